"""The on-disk index: articles, chunks, a FAISS index of chunk vectors, a BM25 index, ``params.json``.

Layout of ``index/<name>/`` (no pickle anywhere)::

    params.json           format version, package version, embedder id and dimension, chunking, BM25 and
                          dense-index settings, corpus content hashes, file sizes and checksums
    articles.jsonl        one article a line, with the exact text all offsets refer to
    chunks.jsonl          one chunk a line, in FAISS row order (articles' chunks are contiguous, in article order)
    *.offsets.npy         byte offset of every line of the two .jsonl files (rows are read on demand)
    chunks.hashes.npy     every chunk's text hash (vector re-use without parsing chunks.jsonl)
    articles.chunks.npy   first chunk row of every article (+ the total)
    sources.json          size, times and inode of every article file (an update re-reads only changed files)
    dense.faiss           FAISS inner-product index of L2-normalised chunk vectors: exact (``IndexFlatIP``)
                          up to ``exact_max_passages``, else IVF-Flat (with a direct map, so vectors stay
                          reconstructable) or HNSW-Flat; its type and tuning are in ``params.json["dense"]``;
                          not written for a Milvus-backed index (``params.json["dense"]["type"] == "milvus"``:
                          Milvus holds and searches the vectors, an update fetches the ones it re-uses from there)
    bm25/                 bm25s sparse matrices (.npy), vocabulary (.json), every chunk's token ids (a
                          Milvus-backed index keeps no score matrix: only the vocabulary, each token's document
                          count for the coverage signal's IDF, and the token ids an update re-uses)
    sentences.npy         float16 vector of every sentence of every chunk, chunk after chunk (when
    sentences.offsets.npy ``settings.sentence_vectors``); chunk ``i`` owns rows ``offsets[i]:offsets[i+1]``

Versions (``index/<name>`` is a link to one complete version folder, swapped atomically) live in
``rag.index.versions``, the files' checksums in ``rag.index.checksums``, writing in ``rag.index.writing``.
A re-build is incremental: unchanged articles keep their chunks (their lines
are copied byte for byte), vectors and BM25 tokens; only new or changed
articles are chunked, tokenised and embedded (vectors are also re-used by
chunk text hash), and deleted articles disappear from both indexes. Chunk ids
(``<doc_id>#<position>``) do not depend on other articles, so they are stable.

Loading is lazy: the two JSON-lines files are memory-mapped and a row is parsed
when asked for, so a million-passage index opens in seconds; every load checks the
files against the checksums in ``params.json``.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import operator
import time
from collections.abc import Mapping
from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from rag.errors import RagError
from rag.index.checksums import verify_files
from rag.index.lexical import MMAP_ABOVE_BYTES, BM25Index, row_offsets
from rag.index.versions import current_folder, versions
from rag.schema import Article, Chunk
from rag.settings import Settings

FORMAT_VERSION = 1
BM25_PARAMS = {"k1": 1.5, "b": 0.75, "stemmer": "snowball-german", "stopwords": "bm25s-de", "tokenizer": 1}
CHUNK_OFFSETS = "chunks.offsets.npy"
CHUNK_HASHES = "chunks.hashes.npy"
ARTICLE_OFFSETS = "articles.offsets.npy"
ARTICLE_CHUNKS = "articles.chunks.npy"
SOURCES = "sources.json"
SENTENCE_VECTORS = "sentences.npy"
SENTENCE_OFFSETS = "sentences.offsets.npy"
CACHE_ROWS = 100_000
# Sentence vector files up to this size (float16) are held as float32: numpy converts float16 at ~1.6 ns a value, so
# converting a question's ~300-800 candidate sentences cost 0.2-0.5 ms, more than the search itself. Up to 32 MB more
# memory; larger files stay float16 (and memory-mapped above MMAP_ABOVE_BYTES).
FLOAT32_SENTENCES_MAX_BYTES = 16 << 20


class JsonlRows:
    """Rows of a JSON-lines file, read on demand through a memory map and a table of line offsets."""

    def __init__(self, path: Path, offsets: np.ndarray | None = None) -> None:
        size = path.stat().st_size
        if size:
            with path.open("rb") as handle:
                self._map = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        else:
            self._map = b""
        if offsets is None:  # an index written before offsets were stored: find the line ends once
            ends = np.flatnonzero(np.frombuffer(self._map, np.uint8) == 10).astype(np.int64) + 1 if size else np.zeros(0, np.int64)
            if size and (not len(ends) or ends[-1] != size):
                ends = np.append(ends, size)
            offsets = np.concatenate([np.zeros(1, np.int64), ends])
        if len(offsets) < 1 or int(offsets[0]) != 0 or int(offsets[-1]) != size:
            raise ValueError(f"{path.name} does not match its line offsets")
        self.offsets = np.asarray(offsets, np.int64)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def raw(self, start: int, stop: int | None = None) -> bytes:
        stop = start + 1 if stop is None else stop
        return self._map[int(self.offsets[start]):int(self.offsets[stop])]


class IndexDamaged(RagError):
    """A row of a lazily read index file turned out unreadable."""


def _damaged(path: Path, what: str) -> RagError:
    return IndexDamaged(f"The index at {path} is damaged ({what}); rebuild it with `rag index`.")


class ChunkStore(SequenceABC):
    """The index's chunks in row order, parsed when first asked for (a read-only list)."""

    def __init__(self, rows: JsonlRows, where: Path) -> None:
        self.lines = rows
        self._where = where
        self._cache: dict[int, Chunk] = {}

    def __len__(self) -> int:
        return len(self.lines)

    def _parse(self, i: int) -> Chunk:
        try:
            return Chunk(**json.loads(self.lines.raw(i)))
        except (ValueError, TypeError):
            raise _damaged(self._where, f"chunk row {i} is unreadable") from None

    def __getitem__(self, i):
        if i.__class__ is slice:
            return [self[j] for j in range(*i.indices(len(self)))]
        chunk = self._cache.get(i)  # the hot path: a row asked for before
        if chunk is not None:
            return chunk
        i = operator.index(i)
        size = len(self.lines.offsets) - 1
        if i < 0:
            i += size
        if not 0 <= i < size:
            raise IndexError("chunk row out of range")
        chunk = self._cache.get(i)
        if chunk is None:
            if len(self._cache) >= CACHE_ROWS:
                self._cache.clear()
            chunk = self._cache[i] = self._parse(i)
        return chunk

    def __iter__(self) -> Iterator[Chunk]:
        for i in range(len(self)):
            chunk = self._cache.get(i)
            yield chunk if chunk is not None else self._parse(i)


class ArticleStore(Mapping):
    """``doc_id → Article``, in article order, each parsed when first asked for (a read-only dict)."""

    def __init__(self, rows: JsonlRows, ids: list[str], where: Path) -> None:
        self.lines = rows
        self._ids = ids
        self._row = {doc_id: i for i, doc_id in enumerate(ids)}
        self._where = where
        self._cache: dict[str, Article] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._row

    def row(self, doc_id: str) -> int:
        return self._row[doc_id]

    def __getitem__(self, doc_id: str) -> Article:
        article = self._cache.get(doc_id)
        if article is None:
            row = self._row[doc_id]
            try:
                article = Article(**json.loads(self.lines.raw(row)))
            except (ValueError, TypeError):
                raise _damaged(self._where, f"article row {row} is unreadable") from None
            if article.doc_id != doc_id:
                raise _damaged(self._where, f"article row {row} is not {doc_id}")
            if len(self._cache) >= CACHE_ROWS:
                self._cache.clear()
            self._cache[doc_id] = article
        return article


@dataclass
class SentenceVectors:
    """One vector per sentence of every chunk: chunk ``i`` owns ``vectors[offsets[i]:offsets[i + 1]]``.

    float16 halves the memory of the largest file; cosine ranks do not change at that precision. Small files are
    loaded as float32 (``FLOAT32_SENTENCES_MAX_BYTES``).
    """

    vectors: np.ndarray
    offsets: np.ndarray

    def of(self, row: int) -> np.ndarray:
        return np.asarray(self.vectors[self.offsets[row]:self.offsets[row + 1]])

    def best(self, rows: np.ndarray, query: np.ndarray) -> np.ndarray:
        """For each chunk row, the highest cosine between ``query`` and one of its sentences (-1 without any)."""
        rows = np.asarray(rows, np.int64)
        starts = self.offsets[rows]
        counts = self.offsets[rows + 1] - starts
        out = np.full(len(rows), -1.0, np.float32)
        has = counts > 0
        if not has.any():
            return out
        starts, counts = starts[has], counts[has]
        firsts = np.cumsum(counts) - counts
        if (starts[1:] == (starts + counts)[:-1]).all():  # one block, e.g. every passage of a small index: no copy
            block = self.vectors[int(starts[0]):int(starts[-1] + counts[-1])]
        else:
            block = self.vectors[np.repeat(starts - firsts, counts) + np.arange(int(counts.sum()))]
        sims = np.asarray(block, np.float32) @ np.asarray(query, np.float32).reshape(-1)
        out[has] = np.maximum.reduceat(sims, firsts)
        return out


@dataclass
class Index:
    """A loaded index, ready to search."""

    path: Path
    params: dict
    articles: Mapping[str, Article]
    chunks: Sequence[Chunk]
    dense: object  # None for a Milvus-backed index
    bm25: BM25Index
    sentences: SentenceVectors | None = None
    folder: Path | None = None  # the version folder the files were read from (``path`` is what the user named)

    @property
    def files(self) -> Path:
        return self.folder or self.path

    def vectors(self) -> np.ndarray:
        """The stored chunk vectors, in row order (for re-use on rebuild)."""
        return self.dense.reconstruct_n(0, self.dense.ntotal) if self.dense.ntotal else np.zeros((0, 0), np.float32)

    def chunk_hashes(self) -> np.ndarray:
        """Every chunk's text hash (``S16``), in row order."""
        file = self.files / CHUNK_HASHES
        if file.exists():
            return np.load(file, allow_pickle=False)
        return np.array([c.text_hash.encode() for c in self.chunks], dtype="S16")

    def sources(self) -> dict:
        """The stat of every article file when the index was built (see ``load_folders``)."""
        try:
            return json.loads((self.files / SOURCES).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def article_chunk_starts(self) -> np.ndarray:
        """First chunk row of every article in article order, then the number of chunks."""
        file = self.files / ARTICLE_CHUNKS
        if file.exists():
            return np.load(file, allow_pickle=False)
        order = {doc_id: i for i, doc_id in enumerate(self.articles)}
        counts = np.bincount([order[c.doc_id] for c in self.chunks], minlength=len(order))
        return row_offsets(counts)


def articles_digest(articles: Iterable[Article]) -> str:
    """One hash of every article's id, text hash, title, date and source: any change to what is stored."""
    digest = hashlib.sha256()
    for a in articles:
        digest.update(json.dumps([a.doc_id, a.sha256, a.title, a.date, a.date_inferred, a.source], ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def chunking_params(settings: Settings) -> dict:
    return {"chunk_tokens": settings.chunk_tokens, "chunk_overlap": settings.chunk_overlap, "splitter": "german-sentences-2", "context_header": 1}


def _read_params(folder: Path, path: Path) -> dict:
    params_path = folder / "params.json"
    if not params_path.exists():
        raise RagError(f"There is no index at {path}; build one with `rag index`.")
    try:
        params = json.loads(params_path.read_text(encoding="utf-8"))
        params["embedder"]["id"], params["files"], params["corpus"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
        raise RagError(f"The index at {path} is damaged (params.json is unreadable); rebuild it with `rag index`.") from None
    if params.get("format_version") != FORMAT_VERSION:
        raise RagError(f"The index at {path} has format version {params.get('format_version')}, this program reads "
                       f"version {FORMAT_VERSION}; rebuild it with `rag index`.")
    return params


def recorded_embedder(path: Path) -> str | None:
    """The embedding model the index at ``path`` was built with, read from its ``params.json`` alone (no index is
    loaded, so a start can check it cheaply); None when there is no readable index."""
    folder = current_folder(Path(path))
    if folder is None:
        return None
    try:
        return _read_params(folder, Path(path))["embedder"]["id"]
    except RagError:
        return None


def _optional_array(file: Path) -> np.ndarray | None:
    return np.load(file, allow_pickle=False) if file.exists() else None


def load_index(path: Path, expected_embedder: str | None = None, verify: bool = True) -> Index:
    """Load and check an index; any problem is one clear ``RagError`` sentence.

    A build may replace the version being opened (and delete it) meanwhile: then the new version is opened.
    """
    path = Path(path)
    for attempt in range(50):
        folder = current_folder(path)
        try:
            return _load_version(path, folder, expected_embedder, verify)
        except RagError:
            if attempt == 49 or (current_folder(path) == folder and (folder is not None or not versions(path))):
                raise
            if folder is None:  # a plain folder is becoming a version (one rename): wait for the link
                time.sleep(0.02)
    raise AssertionError("unreachable")


def _load_version(path: Path, folder: Path | None, expected_embedder: str | None, verify: bool) -> Index:
    import faiss

    if folder is None:
        raise RagError(f"There is no index at {path}; build one with `rag index`.")
    params = _read_params(folder, path)
    if expected_embedder is not None and params["embedder"]["id"] != expected_embedder:
        raise RagError(f"The index at {path} was built with the embedding model {params['embedder']['id']}, "
                       f"but the current setting is {expected_embedder}; rebuild it with `rag index` or change the setting.")
    if verify:
        verify_files(folder, params, shown=path)
    try:
        articles = ArticleStore(JsonlRows(folder / "articles.jsonl", _optional_array(folder / ARTICLE_OFFSETS)),
                                list(params["corpus"]), path)
        chunks = ChunkStore(JsonlRows(folder / "chunks.jsonl", _optional_array(folder / CHUNK_OFFSETS)), path)
        if len(articles.lines) != len(articles):
            raise ValueError("article count")
        if len(chunks):  # the first and last rows parse: the offsets fit the file
            chunks._parse(0), chunks._parse(len(chunks) - 1)
        if len(articles):
            articles[next(iter(articles))]
        in_milvus = params.get("dense", {}).get("type") == "milvus"
        dense = None if in_milvus else faiss.read_index(str(folder / "dense.faiss"))
        bm25 = BM25Index.load(folder / "bm25")
        sentences = _load_sentences(folder, params)
    except RagError:
        raise
    except Exception as err:  # any parse failure of any file means the same thing to the user
        raise RagError(f"The index at {path} is damaged ({type(err).__name__}); rebuild it with `rag index`.") from None
    if (dense is not None and (dense.ntotal != len(chunks) or dense.d != params["embedder"]["dim"])) \
            or bm25.size != len(chunks):
        raise RagError(f"The index at {path} is inconsistent (vector, BM25 and chunk counts differ); rebuild it with `rag index`.")
    if sentences is not None and (len(sentences.offsets) != len(chunks) + 1
                                  or sentences.vectors.shape[1] != params["embedder"]["dim"]):
        raise RagError(f"The index at {path} is inconsistent (sentence vectors do not fit the chunks); rebuild it with `rag index`.")
    return Index(path, params, articles, chunks, dense, bm25, sentences, folder)


def _load_sentences(path: Path, params: dict) -> SentenceVectors | None:
    if "sentences" not in params:
        return None
    file = path / SENTENCE_VECTORS
    size = file.stat().st_size
    vectors = np.load(file, mmap_mode="r" if size > MMAP_ABOVE_BYTES else None, allow_pickle=False)
    if size <= FLOAT32_SENTENCES_MAX_BYTES:
        vectors = vectors.astype(np.float32)  # exact; see FLOAT32_SENTENCES_MAX_BYTES
    offsets = np.load(path / SENTENCE_OFFSETS, allow_pickle=False)
    if vectors.ndim != 2 or offsets.ndim != 1 or not len(offsets) or int(offsets[-1]) != len(vectors) \
            or (np.diff(offsets) < 0).any():
        raise ValueError("sentence offsets")
    return SentenceVectors(vectors, offsets)
