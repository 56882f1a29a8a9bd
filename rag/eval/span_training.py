"""Training and measuring the short-answer scorer (``rag.answer.spans``) on XQuAD-de.

Why XQuAD-de: it is German text nobody in this project wrote rules against, with answer spans marked by people. Only
the tuning half (the first 24 articles, ``rag.eval.xquad.split_of``) is trained on; the held-out half is only
measured. Each question's quote is its gold sentence (the sentence holding the answer span, with the sentences the
span runs into), so this measures the span choice alone; choosing the sentence is the answer selector's job.

The model is a conditional logit: for each question the candidates of its quote share one softmax, and the loss is
the cross-entropy against the candidates that match an answer (SQuAD-normalised exact match; when none does, the
candidates' token F1 squared, so near misses still teach). Fitted with scipy's deterministic L-BFGS on standardised
features; the standardisation is folded into the saved weights. Why this model: in 4-fold cross-validation over the
tuning half's articles (``cross_validate``), with the expected-F1 decoding of ``rag.answer.spans.short_answer``, it
reached EM 0.281 / token F1 0.438 against 0.266 / 0.430 for a LightGBM lambdarank model over the same features; with
the current features it reaches 0.291 / 0.458 against 0.286 / 0.453 for lambdarank (300 trees of 15 leaves) and
0.248 / 0.403 for LightGBM's binary objective (500 trees): 632 questions are too few for trees to beat a regularised
linear model, which also needs no learning library at answer time. The parts-of-speech features (HanTa, ``rag.lang.pos``)
took cross-validated EM / F1 from 0.294 / 0.459 to 0.332 / 0.473 (at L2 5), and with them a stronger penalty helps:
L2 2 / 5 / 10 / 20 gave F1 0.469 / 0.473 / 0.472 / 0.487 (``L2``). Adding the answerer's own chosen
quotes of the tuning questions to the training data (those holding the answer and not the gold sentence itself)
changed F1 on those chosen quotes by +0.004 only (0.362 → 0.366), within the noise, so training stays on gold
sentences and needs no retrieval.

The reader (``rag.answer.reader``) is fine-tuned here too, on the same questions (``rag.eval.reader_training``). The
span scorer learns from the reader's out-of-fold logits (4 folds by article, a reader fine-tuned per fold), so it
weighs them as they are on unseen text; the saved reader is fine-tuned on the whole tuning half.

``train_span_model()`` rebuilds ``rag/answer/models/span_model.json`` (weights by feature name) and
``span_params.json`` (features, training data, split, scores) and ``reader.npz`` reproducibly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from rag.answer.reader import ADAPTER_PATH, Reader, Reading, make_reader
from rag.answer.spans import (FEATURES, MAX_TOKENS, MODEL_PATH, PLAUSIBLE, SpanModel, choose_span, is_explanation,
                              span_features, word_spans)
from rag.eval.answers import exact_match, token_f1
from rag.eval.reader_training import (BATCH, EPOCHS, HEAD_LEARNING_RATE, LEARNING_RATE, RANK, SEED, article_folds,
                                     boundaries, fit_reader, read_states, readings_out_of_fold, require_torch,
                                     save_adapter)
from rag.eval.xquad import default_source, split_of
from rag.ingest.sentences import sentence_spans
from rag.retrieve.onnx_e5 import READER_FROM
from rag.settings import Settings

L2 = 20.0
FOLDS = 4
THRESHOLD = 0.1


@dataclass(frozen=True)
class SpanExample:
    """One XQuAD question with its gold sentence as the quote and the accepted answer texts."""

    id: str
    question: str
    quote: str
    answers: tuple[str, ...]
    article: int = -1  # the XQuAD article (0-based, file order): cross-validation folds keep an article together


def gold_examples(split: str, source: Path | None = None) -> list[SpanExample]:
    """The questions of one XQuAD split (``"tune"``/``"heldout"``), each with the sentence(s) its answer lies in."""
    data = json.loads(Path(source or default_source()).read_text(encoding="utf-8"))["data"]
    examples = []
    for number, article in enumerate(data):
        if split_of(number) != split:
            continue
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            spans = sentence_spans(context)
            for qa in paragraph["qas"]:
                first = qa["answers"][0]
                start, end = first["answer_start"], first["answer_start"] + len(first["text"])
                inside = [(s, e) for s, e in spans if s < end and e > start]
                if inside:
                    answers = tuple(dict.fromkeys(a["text"] for a in qa["answers"]))
                    examples.append(SpanExample(str(qa["id"]), qa["question"].strip(),
                                                context[inside[0][0]:inside[-1][1]], answers, number))
    return examples


def _targets(examples: Sequence[SpanExample], read: Sequence[Reading]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per question: the candidates' feature rows and the target distribution over them (questions whose quote has
    no candidate overlapping an answer teach nothing and are left out)."""
    rows, targets = [], []
    for example, reading in zip(examples, read):
        if is_explanation(example.question):
            continue
        found, matrix = span_features(example.question, example.quote, reading)
        texts = [example.quote[c.start:c.end] for c in found]
        target = np.array([exact_match(t, example.answers) for t in texts])
        if not target.any():
            target = np.array([token_f1(t, example.answers) for t in texts]) ** 2
        if target.any():
            rows.append(matrix)
            targets.append(target / target.sum())
    return rows, targets


def fit_span_model(examples: Sequence[SpanExample], read: Sequence[Reading], l2: float = L2,
                   threshold: float = THRESHOLD) -> SpanModel:
    """The conditional logit's weights by L-BFGS (scipy), with an L2 penalty on the standardised weights."""
    from scipy.optimize import minimize

    rows, targets = _targets(examples, read)
    stacked = np.vstack(rows)
    mean, scale = stacked.mean(axis=0), stacked.std(axis=0)
    scale[scale == 0] = 1.0
    matrix = (stacked - mean) / scale
    target = np.concatenate(targets)
    bounds = np.cumsum([0] + [len(r) for r in rows])

    def loss(weights: np.ndarray) -> tuple[float, np.ndarray]:
        logits = matrix @ weights
        total, residual = 0.5 * l2 * weights @ weights, np.empty_like(logits)
        for a, b in zip(bounds[:-1], bounds[1:]):
            shifted = logits[a:b] - logits[a:b].max()
            log_norm = np.log(np.exp(shifted).sum())
            total -= target[a:b] @ (shifted - log_norm)
            residual[a:b] = np.exp(shifted - log_norm) - target[a:b]
        return total, matrix.T @ residual + l2 * weights

    result = minimize(loss, np.zeros(matrix.shape[1]), jac=True, method="L-BFGS-B", options={"maxiter": 1000})
    # A softmax ignores constants, so folding in the standardisation needs only the scale.
    return SpanModel(FEATURES, result.x / scale, threshold)


def evaluate_spans(model: SpanModel, examples: Sequence[SpanExample], read: Sequence[Reading]) -> dict:
    """SQuAD EM and token F1 of ``short_answer`` on the examples' quotes (no short answer counts as wrong)."""
    em = f1 = answered = 0.0
    for example, reading in zip(examples, read):
        span = choose_span(example.question, example.quote, reading, model)
        prediction = span.text if span else None
        answered += span is not None
        em += exact_match(prediction, example.answers) if span else 0.0
        f1 += token_f1(prediction, example.answers) if span else 0.0
    count = max(len(examples), 1)
    return {"questions": len(examples), "exact_match": round(em / count, 4), "token_f1": round(f1 / count, 4),
            "answered": round(answered / count, 4)}


def cross_validate(examples: Sequence[SpanExample], read: Sequence[Reading], folds: int = FOLDS,
                   l2: float = L2) -> dict:
    """EM and token F1 of models fitted on all but one fold of articles and measured on that fold, pooled: how
    features and settings were compared without looking at the held-out half. ``read``: out-of-fold readings."""
    em = f1 = 0.0
    for left_out in article_folds(examples, folds):
        inside = [i for i, e in enumerate(examples) if e.article not in left_out]
        outside = [i for i, e in enumerate(examples) if e.article in left_out]
        model = fit_span_model([examples[i] for i in inside], [read[i] for i in inside], l2)
        scores = evaluate_spans(model, [examples[i] for i in outside], [read[i] for i in outside])
        em += scores["exact_match"] * len(outside)
        f1 += scores["token_f1"] * len(outside)
    count = max(len(examples), 1)
    return {"folds": folds, "questions": len(examples), "exact_match": round(em / count, 4),
            "token_f1": round(f1 / count, 4)}


def save_span_model(model: SpanModel, record: dict, path: Path = MODEL_PATH) -> None:
    """The weights by feature name, and beside them ``span_params.json`` saying how they were made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"kind": "conditional logit over the candidate spans of one quote", "features": list(model.features),
            "weights": {name: round(float(w), 6) for name, w in zip(model.features, model.weights)},
            "threshold": model.threshold}
    path.write_text(json.dumps(body, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    (path.parent / "span_params.json").write_text(json.dumps(record, ensure_ascii=False, indent=1) + "\n",
                                                  encoding="utf-8")


def train_span_model(settings: Settings, source: Path | None = None, path: Path = MODEL_PATH,
                     adapter_path: Path = ADAPTER_PATH, l2: float = L2) -> dict:
    """Fine-tune the reader and train the span scorer on XQuAD-de's tuning half, measure on both halves (the
    held-out half read by the saved reader's ONNX graph, as at answer time), write both; returns the params record."""
    require_torch()
    tune, heldout = gold_examples("tune", source), gold_examples("heldout", source)
    encoder = make_reader(settings).encoder
    tune_states = read_states(encoder, tune)
    out_of_fold = readings_out_of_fold(tune, tune_states, FOLDS, threads=settings.threads)
    save_adapter(fit_reader(tune_states, tune, threads=settings.threads), adapter_path)
    reader = Reader(encoder, adapter_path)
    heldout_read = [reader.read(e.question, e.quote, word_spans(e.quote)) for e in heldout]
    model = fit_span_model(tune, out_of_fold, l2)
    rows, _ = _targets(tune, out_of_fold)
    record = {
        "model": path.name, "reader": adapter_path.name, "features": list(FEATURES), "max_tokens": MAX_TOKENS,
        "l2": l2, "reader_training": {"from_layer": READER_FROM, "rank": RANK, "epochs": EPOCHS,
                                      "learning_rate": LEARNING_RATE, "head_learning_rate": HEAD_LEARNING_RATE,
                                      "batch": BATCH, "seed": SEED},
        "threshold": model.threshold, "decoding": f"highest expected token F1 among spans at least {PLAUSIBLE} as "
                                                  "probable as the best, never a span of question words only "
                                                  "unless the question offers alternatives "
                                                  "(rag.answer.spans.short_answer)",
        "training_data": "XQuAD-de (xquad.de.json), articles 1-24 in file order (split 'tune'); quote = the gold "
                         "sentence(s) holding the first answer span; target = the candidates equal to an answer "
                         "after SQuAD normalisation, else their token F1 squared; the reader's features are its "
                         f"{FOLDS}-fold out-of-fold logits (folds by article)",
        "training": {"questions": len(tune), "questions_used": len(rows),
                     "candidates": int(sum(len(r) for r in rows))},
        "scores": {"tune_cv_gold_sentence": cross_validate(tune, out_of_fold, l2=l2),
                   "tune_gold_sentence": evaluate_spans(model, tune, out_of_fold),
                   "heldout_gold_sentence": evaluate_spans(model, heldout, heldout_read)},
    }
    save_span_model(model, record, path)
    return record


if __name__ == "__main__":  # python -m rag.eval.span_training
    print(json.dumps(train_span_model(Settings())["scores"], indent=1))
