"""German BM25: our tokenizer feeding a ``bm25s`` sparse index.

bm25s' own tokenizer splits "14,3" into "14" and "3"; figures are what users
ask about, so we tokenise ourselves: case-folded words (umlauts and ß kept),
numbers with their decimal comma or thousands dots as one token, German stop
words removed, Snowball German stems.

The score matrix is bm25s' on-disk format (``.npy`` CSC arrays, vocabulary
``.json``; Lucene BM25), but it is built and searched here with vectorised
numpy: bm25s builds document by document in Python (minutes at a million
passages) and scores with ``np.add.at``. Beside the matrix we keep every
document's token ids (``tokens.ids.npy`` + ``tokens.offsets.npy``), so a
rebuild re-tokenises only new passages. Large indexes load memory-mapped.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

ABBREVIATIONS = {"mrd": "milliarden", "mio": "millionen", "bn": "billion", "mln": "millionen", "tsd": "tausend"}
TOKEN_PATTERN = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+(?:[-'][^\W\d_]+)*", re.UNICODE)
TOKEN_IDS = "tokens.ids.npy"
TOKEN_OFFSETS = "tokens.offsets.npy"
MMAP_ABOVE_BYTES = 64 << 20
_TOKEN_CACHE: dict[str, tuple[str, ...]] = {}
_TOKEN_CACHE_MAX = 2_000_000


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_GERMAN

    return frozenset(STOPWORDS_GERMAN)


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("german")


def _expand(token: str) -> tuple[str, ...]:
    """What one raw token contributes: itself for a number, else its non-stop-word parts, expanded and stemmed."""
    if token[0].isdigit():
        return (token,)
    stop = _stopwords()
    if token in stop:
        return ()
    stem = _stemmer().stemWord
    parts = []
    for part in token.split("-"):
        part = ABBREVIATIONS.get(part, part)
        if part and part not in stop:
            parts.append(stem(part))
    return tuple(parts)


def tokenize(text: str) -> list[str]:
    """Lower-cased, stop-word-free, stemmed tokens; numbers are kept whole and unstemmed."""
    cache = _TOKEN_CACHE
    tokens: list[str] = []
    for token in TOKEN_PATTERN.findall(text.casefold()):
        parts = cache.get(token)
        if parts is None:
            parts = _expand(token)
            if len(cache) < _TOKEN_CACHE_MAX:
                cache[token] = parts
        tokens += parts
    return tokens


class TokenTable:
    """Every document's tokens as ids into one vocabulary: ``ids[offsets[i]:offsets[i + 1]]`` is document ``i``."""

    def __init__(self, ids: np.ndarray, offsets: np.ndarray, vocab: list[str]) -> None:
        self.ids, self.offsets, self.vocab = ids, offsets, vocab

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @classmethod
    def from_tokens(cls, docs: Iterable[Sequence[str]]) -> "TokenTable":
        return merge_tables(None, list(docs))

    def row(self, i: int) -> np.ndarray:
        return np.asarray(self.ids[self.offsets[i]:self.offsets[i + 1]])

    def tokens(self, i: int) -> list[str]:
        return [self.vocab[j] for j in self.row(i)]

    def compacted(self) -> "TokenTable":
        """The same documents over only the tokens they use (after documents were dropped)."""
        used = np.bincount(self.ids, minlength=len(self.vocab)) > 0 if len(self.ids) else np.zeros(len(self.vocab), bool)
        if used.all():
            return self
        remap = np.cumsum(used, dtype=np.int64) - 1
        return TokenTable(remap[self.ids].astype(np.int32), self.offsets, [t for t, u in zip(self.vocab, used) if u])


def _concat(pieces: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(pieces).astype(np.int32, copy=False) if pieces else np.zeros(0, np.int32)


def _offsets(lengths: Sequence[int]) -> np.ndarray:
    offsets = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def merge_tables(old: TokenTable | None, docs: Sequence[int | Sequence[str]]) -> TokenTable:
    """A table whose documents are rows of ``old`` (an int) or new token lists, in the given order."""
    vocab = list(old.vocab) if old is not None else []
    lookup = {t: i for i, t in enumerate(vocab)}
    pieces, lengths = [], []
    for doc in docs:
        if isinstance(doc, (int, np.integer)):
            piece = old.row(int(doc))
        else:
            for token in doc:
                if token not in lookup:
                    lookup[token] = len(vocab)
                    vocab.append(token)
            piece = np.fromiter(map(lookup.__getitem__, doc), np.int32, len(doc))
        pieces.append(piece)
        lengths.append(len(piece))
    return TokenTable(_concat(pieces), _offsets(lengths), vocab).compacted()


def score_matrix(table: TokenTable, k1: float, b: float) -> dict:
    """Lucene BM25 contributions of every (document, token) pair as bm25s' CSC arrays (documents × tokens)."""
    n, vocab_size = len(table), len(table.vocab) + 1  # + bm25s' empty token, which no document holds
    lengths = np.diff(table.offsets)
    if not len(table.ids):
        return {"data": np.zeros(0, np.float32), "indices": np.zeros(0, np.int32),
                "indptr": np.zeros(vocab_size + 1, np.int64), "num_docs": n}
    docs = np.repeat(np.arange(n, dtype=np.int64), lengths)
    pairs, tf = np.unique(table.ids.astype(np.int64) * n + docs, return_counts=True)  # token-major: CSC order
    del docs
    token, doc = np.divmod(pairs, n)
    df = np.bincount(token, minlength=vocab_size)
    idf = np.log1p((n - df + 0.5) / (df + 0.5))
    norm = k1 * (1.0 - b + b * lengths / lengths.mean())
    data = (idf[token] * tf / (tf + norm[doc])).astype(np.float32)
    indptr = np.zeros(vocab_size + 1, np.int64)
    np.cumsum(df, out=indptr[1:])
    return {"data": data, "indices": doc.astype(np.int32), "indptr": indptr, "num_docs": n}


class BM25Index:
    """A bm25s-format index over chunk texts, saved as ``.npy``/``.json`` (never pickle)."""

    def __init__(self, model=None, tokens: TokenTable | None = None, folder: Path | None = None) -> None:
        self._model = model
        self._tokens = tokens
        self._folder = folder
        self._vocab: dict[str, int] = model.vocab_dict if model is not None else {}

    @classmethod
    def build(cls, texts: Sequence[str], k1: float = 1.5, b: float = 0.75) -> "BM25Index":
        return cls.from_table(TokenTable.from_tokens(tokenize(t) for t in texts), k1, b)

    @classmethod
    def from_table(cls, table: TokenTable, k1: float = 1.5, b: float = 0.75) -> "BM25Index":
        """The index of documents already tokenised (e.g. rows kept from an earlier build)."""
        import bm25s

        model = bm25s.BM25(k1=k1, b=b)
        model.scores = score_matrix(table, k1, b)
        model.vocab_dict = {token: i for i, token in enumerate(table.vocab)}
        model.vocab_dict[""] = len(table.vocab)
        model.unique_token_ids_set = set(model.vocab_dict.values())
        model.nonoccurrence_array = None
        return cls(model, table)

    def save(self, folder: Path) -> None:
        folder = Path(folder)
        self._model.save(str(folder), show_progress=False)
        if self._tokens is not None:
            np.save(folder / TOKEN_IDS, np.ascontiguousarray(self._tokens.ids, np.int32), allow_pickle=False)
            np.save(folder / TOKEN_OFFSETS, np.ascontiguousarray(self._tokens.offsets, np.int64), allow_pickle=False)

    @classmethod
    def load(cls, folder: Path, mmap: bool | None = None) -> "BM25Index":
        """Load; ``mmap=None`` memory-maps the arrays of large indexes and reads small ones."""
        import bm25s

        folder = Path(folder)
        if mmap is None:
            data = folder / "data.csc.index.npy"
            mmap = data.exists() and data.stat().st_size > MMAP_ABOVE_BYTES
        return cls(bm25s.BM25.load(str(folder), mmap=mmap, show_progress=False), folder=folder)

    @property
    def size(self) -> int:
        return int(self._model.scores["num_docs"])

    def token_table(self) -> TokenTable | None:
        """Every document's tokens (read on first use); None for an index saved without them."""
        if self._tokens is None and self._folder is not None and (self._folder / TOKEN_IDS).exists():
            vocab = [""] * (len(self._vocab) - 1)
            for token, i in self._vocab.items():
                if token:
                    vocab[i] = token
            ids = np.load(self._folder / TOKEN_IDS, mmap_mode="r", allow_pickle=False)
            offsets = np.load(self._folder / TOKEN_OFFSETS, allow_pickle=False)
            if len(offsets) != self.size + 1 or (len(ids) and int(ids.max(initial=0)) >= len(vocab)):
                return None
            self._tokens = TokenTable(ids, offsets, vocab)
        return self._tokens

    def document_frequencies(self) -> dict[str, int]:
        """Number of documents holding each token (from the index, without re-tokenising anything)."""
        counts = np.diff(np.asarray(self._model.scores["indptr"]))
        return {token: int(counts[i]) for token, i in self._vocab.items() if token}

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Row ids and scores of the best ``k`` chunks (fewer when fewer match), best first, ties by row."""
        ids = [self._vocab[t] for t in tokenize(query) if t in self._vocab]
        if not ids or k <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        scores = self._model.scores
        indptr, indices, data, n = scores["indptr"], scores["indices"], scores["data"], int(scores["num_docs"])
        spans = [(int(indptr[i]), int(indptr[i + 1])) for i in ids]
        rows = np.concatenate([indices[s:e] for s, e in spans])
        if not rows.size:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        weights = np.concatenate([data[s:e] for s, e in spans])
        if rows.size * 16 < n:
            rows, inverse = np.unique(rows, return_inverse=True)
            totals = np.bincount(inverse, weights=weights)
        else:
            full = np.bincount(rows, weights=weights, minlength=n)
            rows = np.flatnonzero(full)
            totals = full[rows]
        keep = totals > 0
        rows, totals = rows[keep].astype(np.int64), totals[keep].astype(np.float32)
        if rows.size > k:
            head = np.argpartition(-totals, k - 1)[:k]
            # everything tied with the k-th score competes on row id, as in a full sort
            kth = totals[head].min()
            head = np.flatnonzero(totals >= kth)
            rows, totals = rows[head], totals[head]
        order = np.lexsort((rows, -totals))[:k]
        return rows[order], totals[order]
