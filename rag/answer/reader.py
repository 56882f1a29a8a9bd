"""Where an answer starts and ends in a quote, read by e5 with the question beside it.

Why: the short-answer scorer (``rag.answer.spans``) sees words, their classes and their distance to the question's
words; it cannot see what a sentence says about the question, and cross-validated token F1 stayed near 0.49 however
its features and learner were varied (``rag.eval.span_training``). The e5 encoder already on this machine reads a
question and a quote as one input (``<s> query: … </s></s> passage: … </s>``), so every word of the quote is seen in
the light of the question. Two logistic regressions over the hidden states of ``READER_LAYERS`` at a word's first and
last sub-word give the log-odds that an answer starts or ends there; the span scorer reads them at and around each
span's edges. No weights of the encoder change: the heads are 2 × 1,152 numbers in ``models/reader.json`` (readable
JSON, trained by ``rag.eval.span_training``), and one pass over question and quote costs about 15 ms
(``READER_GRAPH``). Measured on gold sentences (span scorer with the reader against the span scorer alone): token F1
0.487 → 0.512 in 4-fold cross-validation on XQuAD-de's tuning half, 0.452 → 0.526 on the held-out half.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from rag.retrieve.onnx_e5 import READER_LAYERS
from rag.settings import Settings

READER_PATH = Path(__file__).parent / "models" / "reader.json"


class PairEncoder(Protocol):
    """What the reader needs of an encoder (``rag.retrieve.onnx_e5.OnnxE5Embedder``)."""

    def pair_states(self, question: str, pieces: Sequence[str],
                    words: Sequence[str]) -> tuple[np.ndarray, np.ndarray]: ...

    def warm_up(self) -> None: ...


@dataclass(frozen=True)
class Heads:
    """Start and end logistic regressions over token states (standardisation folded into the weights)."""

    start: np.ndarray
    start_bias: float
    end: np.ndarray
    end_bias: float

    def apply(self, first: np.ndarray, last: np.ndarray) -> Reading:
        """The log-odds for words whose first / last sub-word states are ``first`` / ``last``."""
        return Reading(first @ self.start + self.start_bias, last @ self.end + self.end_bias)


@dataclass(frozen=True)
class Reading:
    """Per word of a quote: log-odds that an answer starts (``start``) or ends (``end``) at it."""

    start: np.ndarray
    end: np.ndarray


def pieces(quote: str, spans: Sequence[tuple[int, int]]) -> tuple[list[str], list[str]]:
    """Each word with the text between it and the word before (so punctuation and spaces are read), and the word."""
    out, previous = [], 0
    for start, end in spans:
        out.append(quote[previous:end])
        previous = end
    return out, [quote[start:end] for start, end in spans]


def load_heads(path: Path = READER_PATH) -> Heads:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if tuple(data["layers"]) != READER_LAYERS:
        raise ValueError(f"{path} was trained on other layers; retrain it with `rag train-answerer`")
    return Heads(np.array(data["start"]["weights"], np.float32), float(data["start"]["bias"]),
                 np.array(data["end"]["weights"], np.float32), float(data["end"]["bias"]))


@lru_cache(maxsize=1)
def default_heads() -> Heads:
    return load_heads(READER_PATH)


@dataclass(frozen=True)
class Reader:
    """The encoder and its heads; ``states`` alone is what training needs."""

    encoder: PairEncoder
    heads: Heads | None = None

    def warm_up(self) -> None:
        """Load the heads and the encoder now, so that the first answer does not wait for them."""
        if self.heads is None:
            default_heads()
        self.encoder.warm_up()

    def states(self, question: str, quote: str, spans: Sequence[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
        return self.encoder.pair_states(question, *pieces(quote, spans))

    def read(self, question: str, quote: str, spans: Sequence[tuple[int, int]]) -> Reading:
        if not spans:
            return Reading(np.zeros(0), np.zeros(0))
        return (self.heads or default_heads()).apply(*self.states(question, quote, spans))


def make_reader(settings: Settings, embedder: object | None = None) -> Reader:
    """The reader over ``embedder`` when it is the ONNX e5 (the retriever's, so its tokenizer and graphs are loaded
    once), else over its own ONNX e5 from ``settings`` (another embedding model is used for retrieval)."""
    if not hasattr(embedder, "pair_states"):
        from rag.retrieve.onnx_e5 import OnnxE5Embedder

        embedder = OnnxE5Embedder(threads=settings.threads, cache_dir=settings.embedder_cache_dir)
    return Reader(embedder)


def save_heads(heads: Heads, record: dict, path: Path = READER_PATH) -> None:
    body = {"kind": "logistic regressions over e5 token states: an answer starts / ends at this word",
            "layers": list(READER_LAYERS), **record,
            "start": {"bias": round(heads.start_bias, 6), "weights": [round(float(w), 6) for w in heads.start]},
            "end": {"bias": round(heads.end_bias, 6), "weights": [round(float(w), 6) for w in heads.end]}}
    path.write_text(json.dumps(body, ensure_ascii=False) + "\n", encoding="utf-8")
