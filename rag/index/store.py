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
                          reconstructable) or HNSW-Flat; its type and tuning are in ``params.json["dense"]``
    bm25/                 bm25s sparse matrices (.npy), vocabulary (.json), every chunk's token ids
    sentences.npy         float16 vector of every sentence of every chunk, chunk after chunk (when
    sentences.offsets.npy ``settings.sentence_vectors``); chunk ``i`` owns rows ``offsets[i]:offsets[i+1]``

Versions: ``index/<name>`` is a symbolic link to a hidden sibling folder ``.<name>.v-<time>`` holding one
complete version. A build (one at a time: ``rag.index.lock``) fills a new version folder, fsyncs it, and
replaces the link with ``os.replace`` in one atomic step; then the replaced version is deleted. So a reader
never moves or renames anything and always opens one complete version; a reader that was still opening the
old version when it was deleted opens the new one (``load_index`` retries), and an index already loaded keeps
working (its files are memory-mapped or in memory). An interrupted build leaves the previous version in place;
its unfinished folder is removed by the next build. A plain folder (an index written before versions) still
loads and becomes a version at the next build.
A re-build is incremental: unchanged articles keep their chunks (their lines
are copied byte for byte), vectors and BM25 tokens; only new or changed
articles are chunked, tokenised and embedded (vectors are also re-used by
chunk text hash), and deleted articles disappear from both indexes. Chunk ids
(``<doc_id>#<position>``) do not depend on other articles, so they are stable.

Loading is lazy: the two JSON-lines files are memory-mapped and a row is parsed
when asked for, so a million-passage index opens in seconds. Every load checks
each file's size; files up to ``FULL_HASH_MAX_BYTES`` are fully hashed, larger
ones through a sampled SHA-256 (head, tail and evenly spaced blocks) so the
check stays fast at scale; ``verify_files(..., full=True)`` hashes everything.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import operator
import os
import shutil
import time
from collections.abc import Mapping
from collections.abc import Sequence as SequenceABC
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import errno

import numpy as np

from rag.errors import RagError
from rag.index.dense import build_dense
from rag.index.lexical import MMAP_ABOVE_BYTES, BM25Index, TokenTable
from rag.index.lock import writer_lock
from rag.lang.de import tokenize
from rag.schema import Article, Chunk
from rag.settings import Settings

FORMAT_VERSION = 1
BM25_PARAMS = {"k1": 1.5, "b": 0.75, "stemmer": "snowball-german", "stopwords": "bm25s-de", "tokenizer": 1}
FULL_HASH_MAX_BYTES = 64 << 20
SAMPLE_EDGE_BYTES = 1 << 20
SAMPLE_BLOCKS = 64
SAMPLE_BLOCK_BYTES = 1 << 16
CHUNK_OFFSETS = "chunks.offsets.npy"
CHUNK_HASHES = "chunks.hashes.npy"
ARTICLE_OFFSETS = "articles.offsets.npy"
ARTICLE_CHUNKS = "articles.chunks.npy"
SOURCES = "sources.json"
SENTENCE_VECTORS = "sentences.npy"
SENTENCE_OFFSETS = "sentences.offsets.npy"
CACHE_ROWS = 100_000
DISK_FULL_BYTES = 1 << 20  # an OSError while writing with less free space than this is a full disk


class _JsonlRows:
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

    def __init__(self, rows: _JsonlRows, where: Path) -> None:
        self._rows = rows
        self._where = where
        self._cache: dict[int, Chunk] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def _parse(self, i: int) -> Chunk:
        try:
            return Chunk(**json.loads(self._rows.raw(i)))
        except (ValueError, TypeError):
            raise _damaged(self._where, f"chunk row {i} is unreadable") from None

    def __getitem__(self, i):
        if i.__class__ is slice:
            return [self[j] for j in range(*i.indices(len(self)))]
        chunk = self._cache.get(i)  # the hot path: a row asked for before
        if chunk is not None:
            return chunk
        i = operator.index(i)
        size = len(self._rows.offsets) - 1
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

    def __init__(self, rows: _JsonlRows, ids: list[str], where: Path) -> None:
        self._rows = rows
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
                article = Article(**json.loads(self._rows.raw(row)))
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

    float16 halves the memory of the largest file; cosine ranks do not change at that precision.
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
        take = np.repeat(starts - firsts, counts) + np.arange(int(counts.sum()))
        sims = np.asarray(self.vectors[take], np.float32) @ np.asarray(query, np.float32).reshape(-1)
        out[has] = np.maximum.reduceat(sims, firsts)
        return out


@dataclass
class Index:
    """A loaded index, ready to search."""

    path: Path
    params: dict
    articles: Mapping[str, Article]
    chunks: Sequence[Chunk]
    dense: object
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


def row_offsets(counts) -> np.ndarray:
    offsets = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sampled_sha256(path: Path) -> str:
    """SHA-256 over the size, the first and last MiB and 64 evenly spaced 64 KiB blocks (for big files)."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as handle:
        starts = [0, max(0, size - SAMPLE_EDGE_BYTES)]
        starts += [int(s) for s in np.linspace(0, max(0, size - SAMPLE_BLOCK_BYTES), SAMPLE_BLOCKS)]
        for i, start in enumerate(starts):
            handle.seek(start)
            digest.update(handle.read(SAMPLE_EDGE_BYTES if i < 2 else SAMPLE_BLOCK_BYTES))
    return digest.hexdigest()


def _file_entry(path: Path) -> dict:
    size = path.stat().st_size
    entry = {"sha256": _sha256(path), "bytes": size}
    if size > FULL_HASH_MAX_BYTES:
        entry["sampled_sha256"] = _sampled_sha256(path)
    return entry


def articles_digest(articles: Iterable[Article]) -> str:
    """One hash of every article's id, text hash, title, date and source: any change to what is stored."""
    digest = hashlib.sha256()
    for a in articles:
        digest.update(json.dumps([a.doc_id, a.sha256, a.title, a.date, a.date_inferred, a.source], ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _index_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "params.json")


def chunking_params(settings: Settings) -> dict:
    return {"chunk_tokens": settings.chunk_tokens, "chunk_overlap": settings.chunk_overlap, "splitter": "german-sentences-1", "context_header": 1}


# ---------------------------------------------------------------------------------------------- versions

def _versions(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f".{path.name}.v-*"))


def current_folder(path: Path) -> Path | None:
    """The folder holding the index's files now: the link's target, a plain (pre-version) folder, or None."""
    path = Path(path)
    if path.is_symlink():
        target = path.parent / os.readlink(path)
        return target if target.is_dir() else None
    return path if path.is_dir() else None


def _remove_stale(path: Path, keep: Path | None) -> None:
    """Versions no link points to (a killed build's) and the leftovers of the old rename swap."""
    stale = [v for v in _versions(path) if keep is None or v.name != keep.name]
    stale += list(path.parent.glob(f".{path.name}.tmp-*")) + list(path.parent.glob(f".{path.name}.old"))
    for folder in stale:
        shutil.rmtree(folder, ignore_errors=True)


def _point(path: Path, version: Path) -> None:
    """Make ``path`` a link to ``version`` in one atomic ``os.replace`` (a plain folder becomes a version first)."""
    link = path.with_name(f".{path.name}.link-{os.getpid()}")
    link.unlink(missing_ok=True)
    os.symlink(version.name, link)
    plain = path.with_name(f".{path.name}.v-0-plain")
    if path.is_dir() and not path.is_symlink():
        path.rename(plain)  # readers retry during this one step
    try:
        os.replace(link, path)
    except OSError:
        if plain.is_dir() and not path.exists():
            plain.rename(path)  # the old index stays where it was
        link.unlink(missing_ok=True)
        raise


def remove_index(path: Path) -> None:
    """Delete an index with all its versions (``shutil.rmtree`` refuses a link)."""
    path = Path(path)
    if path.is_symlink():
        path.unlink()
    else:
        shutil.rmtree(path, ignore_errors=True)
    _remove_stale(path, None)


def _nearly_full(folder: Path) -> bool:
    """Some writers (numpy's ``tofile``) report a full disk as a short write without ``ENOSPC``."""
    try:
        return shutil.disk_usage(folder).free < DISK_FULL_BYTES
    except OSError:
        return False


class DiskFull(RagError):
    """No space left while writing a new index version; the previous version is untouched."""


# ---------------------------------------------------------------------------------------------- writing

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

    def copy(self, source: _JsonlRows, start: int, stop: int) -> None:
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
    old_articles = previous.articles._rows if previous is not None and isinstance(previous.articles, ArticleStore) else None
    old_chunks = previous.chunks._rows if previous is not None and isinstance(previous.chunks, ChunkStore) else None
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
    faiss.write_index(dense, str(tmp / "dense.faiss"))
    BM25Index.from_table(tokens, BM25_PARAMS["k1"], BM25_PARAMS["b"]).save(tmp / "bm25")


def swap_in(path: Path, params: dict, fill: Callable[[Path], None]) -> dict:
    """Fill a new version folder, write params.json with checksums, fsync, and point ``path`` at it.

    The caller holds the writer lock (``rag.index.lock``). A full disk is one ``DiskFull`` sentence naming the
    folder; the previous version stays in place either way.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    old = current_folder(path)
    _remove_stale(path, old if old is not None and old != path else None)
    version = path.with_name(f".{path.name}.v-{time.time_ns()}")
    try:
        version.mkdir()
        fill(version)
        params = dict(params, files={str(p.relative_to(version)): _file_entry(p) for p in _index_files(version)})
        (version / "params.json").write_text(json.dumps(params, indent=2, ensure_ascii=False), encoding="utf-8")
        for p in version.rglob("*"):
            if p.is_file():
                with p.open("rb") as handle:
                    os.fsync(handle.fileno())
        _point(path, version)
    except BaseException as err:
        full = isinstance(err, OSError) and (err.errno in (errno.ENOSPC, errno.EDQUOT) or _nearly_full(path.parent))
        shutil.rmtree(version, ignore_errors=True)
        if full:
            raise DiskFull(f"The disk holding {path.parent} is full, so the new index could not be written; the "
                           f"previous index is unchanged. Free some space and run `rag index` again.") from None
        raise
    _remove_stale(path, version)  # the replaced version (or the plain folder it was)
    return params


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


# ---------------------------------------------------------------------------------------------- loading

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


def verify_files(path: Path, params: dict, full: bool = False, shown: Path | None = None) -> None:
    """Every file listed in params.json exists in ``path`` with its recorded size and checksum.

    Files above ``FULL_HASH_MAX_BYTES`` are checked through their sampled checksum unless ``full``; messages
    name ``shown`` (the index as the user named it) when given.
    """
    for name, expected in params["files"].items():
        file = path / name
        try:
            ok = file.exists() and file.stat().st_size == expected["bytes"]
            if ok and not full and "sampled_sha256" in expected:
                ok = _sampled_sha256(file) == expected["sampled_sha256"]
            elif ok:
                ok = _sha256(file) == expected["sha256"]
        except (OSError, KeyError, TypeError):
            ok = False
        if not ok:
            raise RagError(f"The index at {shown or path} is damaged ({name} is missing or altered); rebuild it with `rag index`.")


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
            if attempt == 49 or (current_folder(path) == folder and (folder is not None or not _versions(path))):
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
        articles = ArticleStore(_JsonlRows(folder / "articles.jsonl", _optional_array(folder / ARTICLE_OFFSETS)),
                                list(params["corpus"]), path)
        chunks = ChunkStore(_JsonlRows(folder / "chunks.jsonl", _optional_array(folder / CHUNK_OFFSETS)), path)
        if len(articles._rows) != len(articles):
            raise ValueError("article count")
        if len(chunks):  # the first and last rows parse: the offsets fit the file
            chunks._parse(0), chunks._parse(len(chunks) - 1)
        if len(articles):
            articles[next(iter(articles))]
        dense = faiss.read_index(str(folder / "dense.faiss"))
        bm25 = BM25Index.load(folder / "bm25")
        sentences = _load_sentences(folder, params)
    except RagError:
        raise
    except Exception as err:  # any parse failure of any file means the same thing to the user
        raise RagError(f"The index at {path} is damaged ({type(err).__name__}); rebuild it with `rag index`.") from None
    if dense.ntotal != len(chunks) or bm25.size != len(chunks) or dense.d != params["embedder"]["dim"]:
        raise RagError(f"The index at {path} is inconsistent (vector, BM25 and chunk counts differ); rebuild it with `rag index`.")
    if sentences is not None and (len(sentences.offsets) != len(chunks) + 1 or sentences.vectors.shape[1] != dense.d):
        raise RagError(f"The index at {path} is inconsistent (sentence vectors do not fit the chunks); rebuild it with `rag index`.")
    return Index(path, params, articles, chunks, dense, bm25, sentences, folder)


def _load_sentences(path: Path, params: dict) -> SentenceVectors | None:
    if "sentences" not in params:
        return None
    file = path / SENTENCE_VECTORS
    vectors = np.load(file, mmap_mode="r" if file.stat().st_size > MMAP_ABOVE_BYTES else None, allow_pickle=False)
    offsets = np.load(path / SENTENCE_OFFSETS, allow_pickle=False)
    if vectors.ndim != 2 or offsets.ndim != 1 or not len(offsets) or int(offsets[-1]) != len(vectors) \
            or (np.diff(offsets) < 0).any():
        raise ValueError("sentence offsets")
    return SentenceVectors(vectors, offsets)
