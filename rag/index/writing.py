"""Writing an index version's files: JSON lines (new rows, or an older version's rows copied byte for byte),
their line offsets, chunk hashes, the FAISS and BM25 indexes, sentence vectors.

Why copy bytes: a re-build is incremental (``rag.index.build``); unchanged articles keep their lines exactly as
they were, so an update of a big index writes mostly sequential copies and parses nothing it keeps.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from rag.index.dense import build_dense
from rag.index.lexical import BM25Index, TokenTable, row_offsets
from rag.index.lock import writer_lock
from rag.index.store import (ARTICLE_CHUNKS, ARTICLE_OFFSETS, BM25_PARAMS, CHUNK_HASHES, CHUNK_OFFSETS,
                             SENTENCE_OFFSETS, SENTENCE_VECTORS, SOURCES, ArticleStore, ChunkStore, Index, JsonlRows,
                             SentenceVectors, articles_digest)
from rag.index.versions import swap_in
from rag.lang.de import tokenize
from rag.schema import Article, Chunk


class _LinesOut:
    """Writes JSON lines (new rows, or byte ranges copied from an older file) and records each line's offset."""

    def __init__(self, path: Path) -> None:
        self._handle = path.open("wb", buffering=1 << 20)
        self._ends: list[np.ndarray] = [np.zeros(1, np.int64)]
        self._pos = 0

    def rows(self, rows: Iterable[dict]) -> None:
        lengths = []
        for row in rows:
            line = (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8")
            self._handle.write(line)
            lengths.append(len(line))
        if lengths:
            self._ends.append(self._pos + np.cumsum(lengths, dtype=np.int64))
            self._pos += sum(lengths)

    def copy(self, source: JsonlRows, start: int, stop: int) -> None:
        if stop <= start:
            return
        first = int(source.offsets[start])
        self._handle.write(source.raw(start, stop))
        self._ends.append(self._pos + (source.offsets[start + 1:stop + 1] - first))
        self._pos += int(source.offsets[stop]) - first

    def close(self) -> np.ndarray:
        self._handle.close()
        return np.concatenate(self._ends)


@dataclass
class Part:
    """One article of a build: either kept from the previous index (rows) or new (records)."""

    article: Article
    article_row: int | None = None          # previous article row whose line can be copied as is
    chunk_rows: tuple[int, int] | None = None  # previous chunk rows [start, stop) kept as they are
    chunks: list[Chunk] | None = None       # new chunks (when chunk_rows is None)

    @property
    def count(self) -> int:
        return self.chunk_rows[1] - self.chunk_rows[0] if self.chunk_rows else len(self.chunks or [])


def _runs(items: Iterable[tuple[int | None, object]]):
    """Group ``(row or None, payload)`` into runs of consecutive previous rows and single new payloads."""
    run: list[int] = []
    for row, payload in items:
        if row is not None and run and row == run[1]:
            run[1] = row + 1
            continue
        if run:
            yield "copy", (run[0], run[1])
            run = []
        if row is not None:
            run = [row, row + 1]
        else:
            yield "new", payload
    if run:
        yield "copy", (run[0], run[1])


def write_folder(tmp: Path, params: dict, parts: list[Part], previous: Index | None, dense, tokens: TokenTable,
                  hashes: np.ndarray, sources: dict | None = None, sentences: SentenceVectors | None = None) -> None:
    """Everything but params.json into ``tmp``."""
    import faiss

    if sentences is not None:
        np.save(tmp / SENTENCE_VECTORS, np.asarray(sentences.vectors, np.float16), allow_pickle=False)
        np.save(tmp / SENTENCE_OFFSETS, np.asarray(sentences.offsets, np.int64), allow_pickle=False)
    if sources:
        (tmp / SOURCES).write_text(json.dumps(sources, ensure_ascii=False), encoding="utf-8")
    old_articles = previous.articles.lines if previous is not None and isinstance(previous.articles, ArticleStore) else None
    old_chunks = previous.chunks.lines if previous is not None and isinstance(previous.chunks, ChunkStore) else None
    out = _LinesOut(tmp / "articles.jsonl")
    for what, payload in _runs((p.article_row if old_articles is not None else None, p.article) for p in parts):
        if what == "copy":
            out.copy(old_articles, *payload)
        else:
            out.rows([asdict(payload)])
    np.save(tmp / ARTICLE_OFFSETS, out.close(), allow_pickle=False)
    out = _LinesOut(tmp / "chunks.jsonl")
    for part in parts:
        if part.chunk_rows is not None and old_chunks is not None:
            out.copy(old_chunks, *part.chunk_rows)
        else:
            chunks = part.chunks if part.chunks is not None else previous.chunks[part.chunk_rows[0]:part.chunk_rows[1]]
            out.rows(dict(vars(c)) for c in chunks)
    np.save(tmp / CHUNK_OFFSETS, out.close(), allow_pickle=False)
    np.save(tmp / CHUNK_HASHES, hashes, allow_pickle=False)
    np.save(tmp / ARTICLE_CHUNKS, row_offsets([p.count for p in parts]), allow_pickle=False)
    bm25 = BM25Index.from_table(tokens, BM25_PARAMS["k1"], BM25_PARAMS["b"])
    if dense is not None:
        faiss.write_index(dense, str(tmp / "dense.faiss"))
        bm25.save(tmp / "bm25")
    else:  # a Milvus-backed index (no dense index given): Milvus holds the vectors and the BM25 index
        bm25.save(tmp / "bm25", searchable=False)


def write_index(path: Path, params: dict, articles: list[Article], chunks: list[Chunk], vectors: np.ndarray,
                dense=None, tokens: TokenTable | None = None) -> None:
    """Write a complete index into a temporary folder, then swap it in atomically.

    ``dense`` (a FAISS index over ``vectors``; default exact) and ``tokens`` (every chunk's BM25 tokens;
    default: tokenised here) let a caller pass what it already has. No sentence vectors are written (as for
    the benchmark's in-memory million-passage index): retrieval then fuses passage vectors and BM25.
    """
    by_doc: dict[str, list[Chunk]] = {}
    for chunk in chunks:
        by_doc.setdefault(chunk.doc_id, []).append(chunk)
    parts = [Part(a, chunks=by_doc.pop(a.doc_id, [])) for a in articles]
    if by_doc or [c.chunk_id for p in parts for c in p.chunks] != [c.chunk_id for c in chunks]:
        raise ValueError("chunks must be grouped by article, in article order")
    if dense is None:
        dense = build_dense(vectors, params["embedder"]["dim"])[0]
    if tokens is None:
        tokens = TokenTable.from_tokens(tokenize(c.indexed_text) for c in chunks)
    params = dict(params)
    params.setdefault("dense", {"type": "flat"})
    params.setdefault("articles_digest", articles_digest(articles))
    hashes = np.array([c.text_hash.encode() for c in chunks], dtype="S16")
    with writer_lock(path):
        swap_in(Path(path), params, lambda tmp: write_folder(tmp, params, parts, None, dense, tokens, hashes))
