"""Training the short-answer scorer: a model fitted on a few XQuAD-de questions is a proper scorer, and cross-
validation keeps an article's questions in one fold."""

import numpy as np

from rag.answer.spans import FEATURES, short_answer, word_spans
from rag.eval.span_training import cross_validate, fit_span_model, gold_examples


def test_gold_examples_hold_their_answer_and_article():
    examples = gold_examples("tune")
    assert len(examples) > 500 and {e.article for e in examples} == set(range(24))
    assert all(any(a in e.quote for a in e.answers) for e in examples[:50])


def test_a_model_fitted_on_a_few_articles_answers_inside_the_quote(reader):
    examples = [e for e in gold_examples("tune") if e.article < 3]
    read = [reader.read(e.question, e.quote, word_spans(e.quote)) for e in examples]
    model = fit_span_model(examples, read)
    assert model.features == FEATURES and np.isfinite(model.weights).all()
    answered = [short_answer(e.question, e.quote, reader, model) for e in examples[:30]]
    assert all(s is None or e.quote[s.start:s.end] == s.text for s, e in zip(answered, examples))
    assert sum(s is not None for s in answered) > 20


def test_cross_validation_scores_every_question_once(reader):
    examples = [e for e in gold_examples("tune") if e.article < 4]
    read = [reader.read(e.question, e.quote, word_spans(e.quote)) for e in examples]
    scores = cross_validate(examples, read, folds=2)
    assert scores["questions"] == len(examples) and 0.0 < scores["token_f1"] <= 1.0
