"""The learned selector: which candidate quote answers, whether the articles hold an answer at all, and how sure
the answer is (readable JSON coefficients in ``rag/answer/models/selector.json``).

Why learned instead of hand rules: the rules of the old answerer were written while reading wrong answers on our own
eval set and added nothing on other German text (XQuAD-de: 71.8 % of answers contained the gold answer, a rule-free
IDF-overlap baseline 73.9 %). A logistic regression weighs the domain-general features of ``rag.answer.features``
(trained by ``rag.eval.train_answerer`` on XQuAD-de's first 24 articles and the odd-numbered half of our eval set);
a second one decides from raw, not candidate-relative, scores whether the articles hold an answer at all, and an
isotonic table turns the scores into a calibrated ``confidence``. Scoring is numpy only: no learning library at
answer time. The reader's view of the best sentence (``rag.answer.reader``, then logistic heads over frozen e5
states: its best start + end, start and end log-odds) added nothing to the answerability decision: at the same 4 %
false abstention, out of fold on the tuning questions, it declined 0.980-0.984 of the removed-article questions
against 0.977 and 0.692-0.769 of the German set's unanswerable ones against 0.769. Nor did the fine-tuned reader's
view (its log-sum-exp mass, best span, best start and end in the best sentence; readers fine-tuned without the
question's article): at 4 % false abstention the held-out removed-article questions stayed at 0.971 declined, XQuAD-de
held-out false abstention at 0.048-0.052, the German held-out half's unanswerable questions 0.54 → 0.54-0.62 (one of
13 questions). A reader fine-tuned SQuAD-2.0 style, with a "no answer" at the ``<s>`` position learned from 1,374
sentences the selector ranked high that do not answer (and from removed-article questions) beside the 632 answers,
separated answerable from unanswerable questions by its null gap (best span minus no-answer logit in the best
sentence) worse than this classifier's probability (ROC AUC held out: removed-article questions 0.898 against 0.988,
near misses 0.668 against 0.841, the German set's questions 0.57-0.68 against 0.79-0.82) and added nothing to it in
a sum. LightGBM in the logistic regression's place, on the same question features, lowered XQuAD-de's held-out false
abstention (0.045 → 0.029) but declined far fewer of the German held-out half's unanswerable questions (0.615 →
0.231-0.308): the trees fit the XQuAD kind of unanswerable question (the article is missing) and miss the near misses.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from rag.answer.features import (FEATURES, QUESTION_FEATURES, STANDOUT_RANKS, ArticleSentences, Candidate,
                                 QuestionView, build_candidates, chunk_rows, english_gloss, matrix, related_words,
                                 question_compounds, question_features, question_view, sentences_view)
from rag.index.lexical import bm25_idf
from rag.lang.de import dated_question, looks_english, tokenize

MODEL_PATH = Path(__file__).parent / "models" / "selector.json"


@dataclass(frozen=True)
class Linear:
    """A logistic regression as plain numbers: standardise with ``mean``/``scale``, then ``coef`` · x + ``intercept``."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def logits(self, X: np.ndarray) -> np.ndarray:
        """The logits of the rows of ``X``; a NaN (a feature this corpus cannot measure, ``features.standout``)
        counts as the training mean, so that it adds nothing."""
        X = np.asarray(X, np.float64)
        X = np.where(np.isnan(X), self.mean, X)
        return ((X - self.mean) / self.scale) @ self.coef + self.intercept

    def to_dict(self) -> dict:
        return {"features": list(self.features), "mean": self.mean.round(6).tolist(),
                "scale": self.scale.round(6).tolist(), "coef": self.coef.round(6).tolist(),
                "intercept": round(float(self.intercept), 6)}

    @classmethod
    def from_dict(cls, d: dict) -> "Linear":
        return cls(tuple(d["features"]), np.array(d["mean"], np.float64), np.array(d["scale"], np.float64),
                   np.array(d["coef"], np.float64), float(d["intercept"]))


@dataclass(frozen=True)
class SelectorModel:
    """The learned parts: the selector that ranks every candidate, the same fitted on sentences alone (no context
    pairs), question-level answerability, and the calibration table that maps a combined score to the probability
    that the answer is right (isotonic regression, as points to interpolate). ``threshold`` is on the answerability
    probability, chosen on held-out folds of the training data.

    Why a second selector for sentences alone: answerability and confidence read the best candidate's logit and
    lead, and a selector that also learns when a sentence's predecessor holds the answer scores the sentences
    themselves differently. Read through it (and with relative features that the pairs moved), at the same
    out-of-fold false abstention, the German set's unanswerable questions were declined 0.538 instead of 0.615 of
    the time and XQuAD-de's near misses 0.315 instead of 0.341; read through this one, as before the pairs."""

    selector: Linear
    own_selector: Linear
    answerable: Linear
    threshold: float
    confidence: Linear
    calibration_x: np.ndarray
    calibration_y: np.ndarray
    english: "SelectorModel | None" = None
    english_without_dictionary: "SelectorModel | None" = None

    def calibrated(self, score: np.ndarray | float) -> np.ndarray:
        return np.interp(score, self.calibration_x, self.calibration_y)

    def for_question(self, view: QuestionView) -> "SelectorModel":
        """The model for English questions when the question is English and there is one, else this one.

        Why a model of its own: an English question shares hardly a word with a German answer sentence, so the
        lexical features (coverage, unknown terms) mean something else than for a German question. Trained on
        both at once (with English-only copies of those columns, or one model for all), the German answers got
        worse: XQuAD-de held-out answer holds gold 0.882 → 0.876, the German set's unanswerable held-out questions
        declined 0.54 → 0.23. A model of the same form, trained on XQuAD-de's tuning half asked in English and on
        the eval set's English questions, leaves the German model to the German questions.

        ``english`` reads English questions with the German words of their translations (``english_gloss``),
        ``english_without_dictionary`` without them: where the dictionary is missing (``view.glossed`` false), the
        model trained with it would read the lexical features of a question that never has any (XQuAD-de held-out
        asked in English: contains gold 0.672 against 0.750 for the model trained without)."""
        if not view.english:
            return self
        model = self.english if view.glossed else self.english_without_dictionary
        return model or self.english or self.english_without_dictionary or self

    def to_dict(self) -> dict:
        d = {"selector": self.selector.to_dict(), "own_selector": self.own_selector.to_dict(),
             "answerable": self.answerable.to_dict(),
             "threshold": round(float(self.threshold), 6), "confidence": self.confidence.to_dict(),
             "calibration": {"x": self.calibration_x.round(6).tolist(), "y": self.calibration_y.round(6).tolist()}}
        return d | {name: model.to_dict() for name, model in (("english", self.english), (
            "english_without_dictionary", self.english_without_dictionary)) if model is not None}

    @classmethod
    def from_dict(cls, d: dict) -> "SelectorModel":
        if tuple(d["selector"]["features"]) != FEATURES or tuple(d["answerable"]["features"]) != QUESTION_FEATURES:
            raise ValueError("the selector model was trained on other features; retrain it with `rag train-answerer`")
        if "own_selector" not in d:
            raise ValueError("the selector model predates context pairs; retrain it with `rag train-answerer`")
        return cls(Linear.from_dict(d["selector"]), Linear.from_dict(d["own_selector"]), Linear.from_dict(d["answerable"]),
                   float(d["threshold"]),
                   Linear.from_dict(d["confidence"]), np.array(d["calibration"]["x"], np.float64),
                   np.array(d["calibration"]["y"], np.float64),
                   cls.from_dict(d["english"]) if d.get("english") else None,
                   cls.from_dict(d["english_without_dictionary"]) if d.get("english_without_dictionary") else None)


def load_model(path: Path = MODEL_PATH) -> SelectorModel:
    return SelectorModel.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


@lru_cache(maxsize=1)
def default_model() -> SelectorModel:
    """The committed model, read once (on first answer, not at import)."""
    return load_model(MODEL_PATH)


def confidence_inputs(answerable_logit: float, row: np.ndarray) -> np.ndarray:
    """What the confidence score combines: answerability, and from the question's ``QUESTION_FEATURES`` ``row`` the
    best candidate's selector logit and its lead."""
    return np.array([answerable_logit, row[QUESTION_FEATURES.index("top_logit")],
                     row[QUESTION_FEATURES.index("margin")]], np.float64)


CONFIDENCE_FEATURES = ("answerable_logit", "top_logit", "margin")


@dataclass(frozen=True)
class Scored:
    """One question's candidates with their selector probabilities (best first) and the question-level decision."""

    view: QuestionView
    candidates: list[Candidate]
    probabilities: np.ndarray
    answerable: float
    confidence: float
    abstain: bool


class Selector:
    """Question + retrieved passages → scored candidate quotes, on one loaded index (per-article caches kept)."""

    def __init__(self, retriever, model: SelectorModel | None = None, gloss: bool | None = None) -> None:
        """``gloss``: read English questions with the German words of their translations (``english_gloss``)
        when the dictionary is there; None: when the model has a model for questions read so (training sets it)."""
        self.retriever = retriever
        self.model = model
        self.gloss = gloss
        self.sentences = ArticleSentences(retriever.index)
        self._rows: dict[str, int] | None = None

    def dated(self, question: str) -> str:
        """The question as retrieval reads it: relative years replaced by the years they mean today
        (``rag.lang.de.dated_question``). Callers pass ``features``, ``background`` and ``score`` the dated question,
        so that the query vector the retriever kept for it is reused."""
        return dated_question(question, self.retriever.settings.reference_day())

    def features(self, question: str, hits: Sequence, passages: int) -> tuple[QuestionView, list[Candidate], np.ndarray]:
        """The candidates of the best ``passages`` hits with their feature matrix (``FEATURES`` columns)."""
        index = self.retriever.index
        if self._rows is None:
            self._rows = chunk_rows(index)
        weights = self.retriever.term_weights(question)
        compounds = question_compounds(question, weights, self.retriever.stem_weights)
        if compounds:
            weights = {**weights, **self.retriever.stem_weights({p for parts in compounds.values() for p in parts})}
        used = {t for hit in hits[:passages] for t in tokenize(hit.text)}  # the passages' stems
        view = question_view(question, weights, bm25_idf(max(len(index.chunks), 1), 0), compounds,
                             self._gloss(question, used), self.retriever.stem_weights, self._synonyms(question, used))
        query = np.asarray(self.retriever.query_vector(question), np.float32).reshape(-1)
        candidates, feats = build_candidates(index, self.sentences, self._rows, view, query, hits, passages)
        return view, candidates, matrix(feats)

    def _gloss(self, question: str, used: set[str]) -> dict[str, float] | None:
        """An English question's German terms (``english_gloss``) that the passages use (``used``: their stems)
        with their IDF; None for a German question or without the dictionary (``settings.english_dictionary``)."""
        if not looks_english(question):
            return None
        gloss = self.gloss if self.gloss is not None else (self.model or default_model()).english is not None
        if not gloss:
            return None
        dictionary = self.retriever.dictionary()
        if dictionary is None:
            return None
        return self.retriever.stem_weights(english_gloss(question, used, dictionary, self.retriever.thesaurus()))

    def _synonyms(self, question: str, used: set[str]) -> dict[str, frozenset[str]] | None:
        """A German question's stems with the passages' stems (``used``) that say the same (``related_words``);
        none for an English question; None without the thesaurus (``settings.german_thesaurus``)."""
        if looks_english(question):
            return {}  # always measured as none, with or without the thesaurus: the English models learn nothing of it
        thesaurus = self.retriever.thesaurus()
        return None if thesaurus is None else related_words(tokenize(question), used, thesaurus,
                                                             self.retriever.stem_weights)

    def background(self, question: str) -> tuple[list[float], list[float], int]:
        """The question's best ``STANDOUT_RANKS`` dense and BM25 passage scores over the whole index (the query
        vector is the retriever's kept one: nothing is embedded again), and the index's number of passages."""
        return (list(self.retriever.dense_search(question, STANDOUT_RANKS).values()),
                list(self.retriever.bm25_search(question, STANDOUT_RANKS).values()), len(self.retriever.index.chunks))

    def score(self, question: str, hits: Sequence, passages: int) -> Scored:
        view, candidates, X = self.features(question, hits, passages)
        model = (self.model or default_model()).for_question(view)
        if not candidates:
            return Scored(view, [], np.zeros(0), 0.0, 0.0, True)
        logits = model.selector.logits(X)
        own = sentences_view(X)
        row = question_features(view, own, model.own_selector.logits(own), hits, *self.background(question))
        answerable_logit = float(model.answerable.logits(row[None, :])[0])
        answerable = 1.0 / (1.0 + math.exp(-answerable_logit))
        confidence = float(model.calibrated(model.confidence.logits(confidence_inputs(answerable_logit, row)[None, :])[0]))
        order = np.argsort(-logits, kind="stable")
        probabilities = 1.0 / (1.0 + np.exp(-logits[order]))
        return Scored(view, [candidates[i] for i in order], probabilities, answerable, confidence,
                      answerable < model.threshold)
