"""Training the short-answer scorer: a model fitted on a few XQuAD-de questions is a proper scorer, and cross-
validation keeps an article's questions in one fold."""

import numpy as np

from rag.answer.spans import FEATURES, short_answer
from rag.eval.span_training import (boundaries, cross_validate, fit_heads, fit_span_model, gold_examples, read_all,
                                    readings, readings_out_of_fold)


def test_gold_examples_hold_their_answer_and_article():
    examples = gold_examples("tune")
    assert len(examples) > 500 and {e.article for e in examples} == set(range(24))
    assert all(any(a in e.quote for a in e.answers) for e in examples[:50])


def test_boundaries_mark_where_an_answer_starts_and_ends():
    example = gold_examples("tune")[0]
    starts, ends = boundaries(example)
    assert starts.sum() >= 1 and ends.sum() >= 1 and len(starts) == len(ends)
    assert np.argmax(starts) <= np.argmax(ends)


def test_a_model_fitted_on_a_few_articles_answers_inside_the_quote(reader):
    examples = [e for e in gold_examples("tune") if e.article < 3]
    states = read_all(reader, examples)
    heads = fit_heads(states, examples)
    read = readings(heads, states)
    # trained heads find answer boundaries: an answer's first word scores above the quote's other words
    hits = [r.start[starts == 1].max() > np.median(r.start) for e, r in zip(examples, read)
            if (starts := boundaries(e)[0]).any()]
    assert np.mean(hits) > 0.8
    model = fit_span_model(examples, read)
    assert model.features == FEATURES and np.isfinite(model.weights).all()
    trained = type(reader)(reader.encoder, heads)
    answered = [short_answer(e.question, e.quote, trained, model) for e in examples[:30]]
    assert all(s is None or e.quote[s.start:s.end] == s.text for s, e in zip(answered, examples))
    assert sum(s is not None for s in answered) > 20


def test_cross_validation_scores_every_question_once(reader):
    examples = [e for e in gold_examples("tune") if e.article < 4]
    read = readings_out_of_fold(examples, read_all(reader, examples), folds=2)
    assert all(len(r.start) == len(r.end) > 0 for r in read)
    scores = cross_validate(examples, read, folds=2)
    assert scores["questions"] == len(examples) and 0.0 < scores["token_f1"] <= 1.0
