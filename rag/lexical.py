"""German BM25: our tokenizer feeding ``bm25s``.

bm25s' own tokenizer splits "14,3" into "14" and "3"; figures are what users
ask about, so we tokenise ourselves: case-folded words (umlauts and ß kept),
numbers with their decimal comma or thousands dots as one token, German stop
words removed, Snowball German stems.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

ABBREVIATIONS = {"mrd": "milliarden", "mio": "millionen", "bn": "billion", "mln": "millionen", "tsd": "tausend"}
TOKEN_PATTERN = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+(?:[-'][^\W\d_]+)*", re.UNICODE)


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_GERMAN

    return frozenset(STOPWORDS_GERMAN)


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("german")


def tokenize(text: str) -> list[str]:
    """Lower-cased, stop-word-free, stemmed tokens; numbers are kept whole and unstemmed."""
    stop = _stopwords()
    stem = _stemmer().stemWord
    tokens = []
    for match in TOKEN_PATTERN.finditer(text.casefold()):
        token = match.group(0)
        if token[0].isdigit():
            tokens.append(token)
        elif token not in stop:
            for part in token.split("-"):
                part = ABBREVIATIONS.get(part, part)
                if part and part not in stop:
                    tokens.append(stem(part))
    return tokens


class BM25Index:
    """A bm25s index over chunk texts, saved as ``.npy``/``.json`` (never pickle)."""

    def __init__(self, model=None) -> None:
        self._model = model

    @classmethod
    def build(cls, texts: Sequence[str], k1: float = 1.5, b: float = 0.75) -> "BM25Index":
        import bm25s

        model = bm25s.BM25(k1=k1, b=b)
        model.index([tokenize(t) for t in texts], show_progress=False)
        return cls(model)

    def save(self, folder: Path) -> None:
        self._model.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path, mmap: bool = False) -> "BM25Index":
        import bm25s

        return cls(bm25s.BM25.load(str(folder), mmap=mmap, show_progress=False))

    @property
    def size(self) -> int:
        return int(self._model.scores["num_docs"])

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Row ids and scores of the best ``k`` chunks (fewer when fewer match)."""
        tokens = [t for t in tokenize(query) if t in self._model.vocab_dict]
        if not tokens or k <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        k = min(k, self.size)
        ids, scores = self._model.retrieve([tokens], k=k, show_progress=False, n_threads=1)
        ids, scores = ids[0], scores[0]
        keep = scores > 0
        return ids[keep].astype(np.int64), scores[keep].astype(np.float32)
