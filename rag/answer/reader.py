"""Where an answer starts and ends in a quote, read by e5 fine-tuned to find it, with the question beside it.

Why: the short-answer scorer (``rag.answer.spans``) sees words, their classes and their distance to the question's
words; it cannot see what a sentence says about the question, and cross-validated token F1 stayed near 0.49 however
its features and learner were varied (``rag.eval.span_training``). The e5 encoder already on this machine reads a
question and a quote as one input (``<s> query: … </s></s> passage: … </s>``), so every word of the quote is seen in
the light of the question. Logistic heads over its frozen states took the span scorer's token F1 on gold sentences
to 0.512 (4-fold cross-validation on XQuAD-de's tuning half) / 0.526 (held-out half); fine-tuning its top six layers
to point at the answer's first and last word (``rag.eval.reader_training``) took it to 0.616 / 0.596 (end to end, with
the answerer's own quotes: XQuAD-de held-out short-answer F1 0.389 → 0.452). The span scorer reads the reader's start
and end logits at and around each candidate span's edges.

The fine-tuned weights are low-rank updates of e5's own (``models/reader.npz``, plain ``.npy`` arrays: 1.5 MB instead
of 42 MB of layers), merged into a graph of their own once per machine (``rag.retrieve.onnx_e5.reader_graph``). One
pass over question and quote costs about as much as one passage embedding (about 15 ms for 80 tokens).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, Sequence, TypeVar

import numpy as np

from rag.settings import Settings

ADAPTER_PATH = Path(__file__).parent / "models" / "reader.npz"
T = TypeVar("T")


class PairEncoder(Protocol):
    """What the reader needs of an encoder (``rag.retrieve.onnx_e5.OnnxE5Embedder``)."""

    def read_pair(self, question: str, pieces: Sequence[str], words: Sequence[str], adapter: Path,
                  beside: Callable[[], T] | None = None) -> tuple[np.ndarray, np.ndarray, T | None]: ...

    def warm_up(self) -> None: ...


@dataclass(frozen=True)
class Reading:
    """Per word of a quote: the logit that an answer starts (``start``) or ends (``end``) at it."""

    start: np.ndarray
    end: np.ndarray


def pieces(quote: str, spans: Sequence[tuple[int, int]]) -> tuple[list[str], list[str]]:
    """Each word with the text between it and the word before (so punctuation and spaces are read), and the word."""
    out, previous = [], 0
    for start, end in spans:
        out.append(quote[previous:end])
        previous = end
    return out, [quote[start:end] for start, end in spans]


@dataclass(frozen=True)
class Reader:
    """The encoder and the fine-tuned weights it reads with."""

    encoder: PairEncoder
    adapter: Path = ADAPTER_PATH

    def warm_up(self) -> None:
        """Load the encoder and build (first time on a machine) and load the reader's graph now, so that the first
        answer does not wait for them."""
        self.encoder.warm_up()
        self.read("Wer?", "Niemand.", [(0, 7)])

    def read(self, question: str, quote: str, spans: Sequence[tuple[int, int]]) -> Reading:
        return self.read_beside(question, quote, spans, None)[0]

    def read_beside(self, question: str, quote: str, spans: Sequence[tuple[int, int]],
                    work: Callable[[], T] | None) -> tuple[Reading, T | None]:
        """``read``, with ``work`` (Python: the short answer's span features, ``rag.answer.spans.span_rows``) done in
        this thread while the encoder reads in another, and its result."""
        if not spans:
            return Reading(np.zeros(0), np.zeros(0)), work() if work else None
        start, end, done = self.encoder.read_pair(question, *pieces(quote, spans), self.adapter, work)
        return Reading(start.astype(np.float64), end.astype(np.float64)), done


def make_reader(settings: Settings, embedder: object | None = None) -> Reader:
    """The reader over ``embedder`` when it is the ONNX e5 (the retriever's, so its tokenizer and graphs are loaded
    once), else over its own ONNX e5 from ``settings`` (another embedding model is used for retrieval)."""
    if not hasattr(embedder, "read_pair"):
        from rag.retrieve.onnx_e5 import OnnxE5Embedder

        embedder = OnnxE5Embedder(threads=settings.threads, cache_dir=settings.embedder_cache_dir)
    return Reader(embedder)
