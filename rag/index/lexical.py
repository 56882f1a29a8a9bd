"""German BM25: our tokenizer feeding a ``bm25s`` sparse index.

bm25s' own tokenizer splits "14,3" into "14" and "3"; figures are what users
ask about, so we tokenise ourselves (``rag.lang.de.tokenize``: case-folded
words, numbers whole, German stop words removed, Snowball German stems).

The index is stored in bm25s' file format (``.npy`` CSC arrays of Lucene BM25
contributions, vocabulary ``.json``) but built and searched here with
vectorised numpy and without importing bm25s: bm25s builds document by document
in Python (minutes at a million passages), scores with ``np.add.at``, and its
import pulls in scipy and numba (a third of a second of start-up). Beside the
matrix we keep every document's token ids (``tokens.ids.npy`` +
``tokens.offsets.npy``), so a rebuild re-tokenises only new passages. Large
indexes load memory-mapped.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from rag.lang.de import tokenize

TOKEN_IDS = "tokens.ids.npy"
TOKEN_OFFSETS = "tokens.offsets.npy"
MMAP_ABOVE_BYTES = 64 << 20
BM25S_FORMAT = "0.3.16"  # the bm25s version whose file layout we write


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


def row_offsets(lengths: Sequence[int]) -> np.ndarray:
    offsets = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def bm25_idf(documents: int, frequency: int) -> float:
    """BM25's IDF of a token found in ``frequency`` of ``documents`` documents: ln(1 + (N − n + 0.5) / (n + 0.5))."""
    return math.log(1 + (documents - frequency + 0.5) / (frequency + 0.5))


@dataclass(frozen=True)
class SentenceTerms:
    """Passages' distinct terms per sentence, sorted by term: ``sentences[i]`` (numbered across the passages) holds
    term ``terms[i]``; passage ``j`` owns sentences ``offsets[j]`` to ``offsets[j + 1]``, at least one.

    Sorted by term so that the sentences holding one term are a slice: a question's few terms are found by binary
    search, also in the table of a whole small index (``Retriever.coverage_search``)."""

    terms: np.ndarray
    sentences: np.ndarray
    offsets: np.ndarray

    @classmethod
    def of(cls, passages: Sequence[tuple[np.ndarray, np.ndarray, int]]) -> "SentenceTerms":
        """From each passage's ``(term ids, sentence numbers within the passage, number of sentences)``."""
        offsets = row_offsets([count for _, _, count in passages])
        sizes = [len(terms) for terms, _, _ in passages]
        if not sum(sizes):
            return cls(np.zeros(0, np.int32), np.zeros(0, np.int32), offsets)
        terms = np.concatenate([terms for terms, _, _ in passages])
        sentences = (np.concatenate([numbers for _, numbers, _ in passages])
                     + np.repeat(offsets[:-1], sizes)).astype(np.int32)  # int32: half the memory of a big table
        order = np.argsort(terms, kind="stable")
        return cls(terms[order], sentences[order], offsets)


def sentence_coverage(weights: Mapping[str, float], term_ids: Mapping[str, int], table: SentenceTerms) -> np.ndarray:
    """For each passage of ``table``, the share of the question's term weight (``weights``: token → IDF) that its best
    single sentence holds.

    Why: BM25 scores a passage as a bag of words, so sibling paragraphs on one topic tie; the question was
    asked about one sentence, and the passage holding most of its rare words in one sentence is the likelier one.
    Each sentence's weight is added term by term in ``weights``' order, so it equals the plain sum over the
    sentence's terms bit for bit (a Python loop over the ~50 candidates' sentences took ~0.1 ms a question).
    """
    total = sum(weights.values())
    held = np.zeros(int(table.offsets[-1]))
    if total <= 0 or not len(held):
        return np.zeros(len(table.offsets) - 1)
    for term, weight in weights.items():
        i = term_ids.get(term)
        if i is not None:
            start, stop = np.searchsorted(table.terms, (i, i + 1)).tolist()
            held[table.sentences[start:stop]] += weight
    return np.maximum.reduceat(held, table.offsets[:-1]) / total


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
    return TokenTable(_concat(pieces), row_offsets(lengths), vocab).compacted()


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
    """A BM25 index over chunk texts in bm25s' file format (``.npy``/``.json``, never pickle).

    Written and read here without importing bm25s (whose files stay loadable by ``bm25s.BM25.load``).
    """

    DATA, INDICES, INDPTR = "data.csc.index.npy", "indices.csc.index.npy", "indptr.csc.index.npy"
    VOCAB, PARAMS = "vocab.index.json", "params.index.json"

    def __init__(self, scores: dict, vocab: dict[str, int], params: dict, tokens: TokenTable | None = None,
                 folder: Path | None = None) -> None:
        self.scores = scores
        self.vocab = vocab
        self.params = params
        self._tokens = tokens
        self._folder = folder

    @classmethod
    def build(cls, texts: Sequence[str], k1: float = 1.5, b: float = 0.75) -> "BM25Index":
        return cls.from_table(TokenTable.from_tokens(tokenize(t) for t in texts), k1, b)

    @classmethod
    def from_table(cls, table: TokenTable, k1: float = 1.5, b: float = 0.75) -> "BM25Index":
        """The index of documents already tokenised (e.g. rows kept from an earlier build)."""
        vocab = {token: i for i, token in enumerate(table.vocab)}
        vocab[""] = len(table.vocab)  # bm25s' empty token, which no document holds
        scores = score_matrix(table, k1, b)
        params = {"k1": k1, "b": b, "delta": 0.5, "method": "lucene", "idf_method": "lucene", "dtype": "float32",
                  "int_dtype": "int32", "num_docs": scores["num_docs"], "version": BM25S_FORMAT, "backend": "numpy"}
        return cls(scores, vocab, params, table)

    def save(self, folder: Path, searchable: bool = True) -> None:
        """``searchable=False`` (an index searched by Milvus) leaves out the score matrix: what stays are the
        vocabulary with each token's document count (``indptr``: the IDF the coverage signal reads) and the token
        ids (an update re-uses them)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name, key in ((self.DATA, "data"), (self.INDICES, "indices"), (self.INDPTR, "indptr")):
            if searchable or key == "indptr":
                np.save(folder / name, np.asarray(self.scores[key]), allow_pickle=False)
        (folder / self.VOCAB).write_text(json.dumps(self.vocab, ensure_ascii=False), encoding="utf-8")
        (folder / self.PARAMS).write_text(json.dumps(self.params, indent=4), encoding="utf-8")
        tokens = self.token_table()
        if tokens is not None:
            np.save(folder / TOKEN_IDS, np.ascontiguousarray(tokens.ids, np.int32), allow_pickle=False)
            np.save(folder / TOKEN_OFFSETS, np.ascontiguousarray(tokens.offsets, np.int64), allow_pickle=False)

    @classmethod
    def load(cls, folder: Path, mmap: bool | None = None) -> "BM25Index":
        """Load; ``mmap=None`` memory-maps the arrays of large indexes and reads small ones."""
        folder = Path(folder)
        params = json.loads((folder / cls.PARAMS).read_text(encoding="utf-8"))
        if params.get("method", "lucene") != "lucene":
            raise ValueError(f"BM25 variant {params.get('method')} is not supported")
        searchable = (folder / cls.DATA).exists()  # else saved without its score matrix: finds nothing
        if mmap is None:
            mmap = searchable and (folder / cls.DATA).stat().st_size > MMAP_ABOVE_BYTES
        mode = "r" if mmap else None
        scores = {key: np.load(folder / name, mmap_mode=mode, allow_pickle=False) if searchable or key == "indptr"
                  else np.zeros(0, np.float32 if key == "data" else np.int32)
                  for name, key in ((cls.DATA, "data"), (cls.INDICES, "indices"), (cls.INDPTR, "indptr"))}
        scores["num_docs"] = int(params["num_docs"])
        vocab = json.loads((folder / cls.VOCAB).read_text(encoding="utf-8"))
        # bm25s itself leaves its empty token "" out of the matrix (len(vocab) pointers), we keep a column for it
        if len(scores["indptr"]) not in (len(vocab), len(vocab) + 1) or len(scores["data"]) != len(scores["indices"]):
            raise ValueError("BM25 arrays do not fit the vocabulary")
        return cls(scores, vocab, params, folder=folder)

    @property
    def size(self) -> int:
        return int(self.scores["num_docs"])

    def token_table(self) -> TokenTable | None:
        """Every document's tokens (read on first use); None for an index saved without them."""
        if self._tokens is None and self._folder is not None and (self._folder / TOKEN_IDS).exists():
            vocab = [""] * (len(self.vocab) - 1)
            for token, i in self.vocab.items():
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
        counts = np.diff(np.asarray(self.scores["indptr"]))
        return {token: int(counts[i]) for token, i in self.vocab.items() if token}

    def idf(self, tokens: Iterable[str]) -> dict[str, float]:
        """``bm25_idf`` of each token the index knows (others are left out)."""
        indptr = self.scores["indptr"]
        return {token: bm25_idf(self.size, int(indptr[i + 1]) - int(indptr[i]))
                for token in tokens if token and (i := self.vocab.get(token)) is not None}

    def search(self, query: str, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Row ids and scores of the best ``k`` chunks (fewer when fewer match), best first, ties by row;
        ``allowed`` (a boolean mask over rows) restricts the ranking to those rows (a date range)."""
        vocab = self.vocab
        ids = [vocab[t] for t in tokenize(query) if t in vocab]
        if not ids or k <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        scores = self.scores
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
        if allowed is not None:  # (every total is positive: BM25 contributions are)
            keep = allowed[rows]
            rows, totals = rows[keep], totals[keep]
        rows, totals = rows.astype(np.int64), totals.astype(np.float32)
        if rows.size > k:
            head = np.argpartition(-totals, k - 1)[:k]
            # everything tied with the k-th score competes on row id, as in a full sort
            kth = totals[head].min()
            head = np.flatnonzero(totals >= kth)
            rows, totals = rows[head], totals[head]
        order = np.lexsort((rows, -totals))[:k]
        return rows[order], totals[order]
