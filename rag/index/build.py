"""Building and updating an index from article folders, incrementally.

Why incremental: re-indexing a newsroom archive after one new article must not re-embed the archive. Files whose
size, times and inode are unchanged are not re-read; unchanged articles keep their chunks, vectors and BM25 tokens;
only new or changed articles are chunked, tokenised and embedded (each distinct text once), and deleted ones are
dropped. The result is written by ``rag.index.writing`` into a new version folder and swapped in. The whole build,
from reading the existing index to the swap, holds the index's writer lock (``rag.index.lock``): a build re-uses
what it read, so no other build may replace the index meanwhile.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from rag import __version__
from rag.errors import RagError
from rag.index.dense import build_dense, dense_kind, reconstruct
from rag.index.lexical import merge_tables, row_offsets
from rag.index.lock import writer_lock
from rag.index.milvus import MilvusStore, backend_params, prepare_backend, recorded_backend, sync_index
from rag.index.store import (BM25_PARAMS, FORMAT_VERSION, Index, IndexDamaged, SentenceVectors, articles_digest,
                             chunking_params, load_index)
from rag.index.versions import swap_in
from rag.index.writing import Part, write_folder
from rag.ingest.chunking import chunk_article, sentence_texts
from rag.ingest.corpus import ARTICLE_SUFFIXES, METADATA_FILE, Skipped, load_article_file, load_folder, read_metadata
from rag.lang.de import tokenize
from rag.progress import Listener, Progress
from rag.schema import Article, Chunk, Embedder
from rag.settings import Settings

EMBED_BATCH = 16
UNDATED_NAMED = 10  # undated articles warned about by name; the rest are counted
Report = Callable[[int, str, str], Progress]  # (total, description, unit) → a progress counter


@dataclass
class BuildReport:
    """What ``rag index`` did, printed as JSON by the CLI."""

    index_dir: str
    articles: int
    chunks: int
    embedded: int
    reused: int
    seconds: float
    up_to_date: bool = False
    skipped: list[str] = field(default_factory=list)
    removed: int = 0
    dense: str = "flat"
    timings: dict = field(default_factory=dict)
    sentences_embedded: int = 0


def _file_stat(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _load_folder(folder: Path, max_bytes: int, previous: "Index | None", known: dict, stats: dict,
                 since_ns: int) -> tuple[list[Article], list[Skipped]]:
    """``corpus.load_folder``, re-using the previous index's record of each file whose size, times and inode are
    unchanged (and the folder's metadata.json too), so an update reads only new and changed files."""
    known_files = known.get("files", {})
    if not known_files or previous is None or not folder.is_dir():
        articles, skipped = load_folder(folder, max_bytes)
        for article in articles:
            _remember(stats, article.source, _file_stat(Path(article.source)), since_ns)
        stats["metadata"][str(folder)] = _file_stat(folder / METADATA_FILE)
        return articles, skipped
    metadata_stat = _file_stat(folder / METADATA_FILE)
    metadata_same = str(folder) in known.get("metadata", {}) and known["metadata"][str(folder)] == metadata_stat
    metadata = read_metadata(folder)
    try:
        paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in ARTICLE_SUFFIXES and p.is_file())
    except OSError:
        return load_folder(folder, max_bytes)  # raises its one-sentence error
    articles: list[Article] = []
    skipped: list[Skipped] = []
    for path in paths:
        try:
            stat, key, article = _file_stat(path), str(path), None
            if metadata_same and stat is not None and known_files.get(key) == stat and stat[0] <= max_bytes \
                    and path.stem in previous.articles:
                article = previous.articles[path.stem]
                article = article if article.source == key else None
            if article is None:
                article = load_article_file(path, metadata.get(path.stem), max_bytes)
            articles.append(article)
            _remember(stats, key, stat, since_ns)
        except ValueError as err:
            skipped.append(Skipped(str(path), f"{path.name} skipped: {err}."))
        except OSError as err:
            skipped.append(Skipped(str(path), f"{path.name} skipped: it cannot be read ({err.strerror})."))
    if not articles:
        return load_folder(folder, max_bytes)  # raises its one-sentence error
    stats["metadata"][str(folder)] = metadata_stat
    return articles, skipped


def _remember(stats: dict, key: str, stat: list[int] | None, since_ns: int) -> None:
    """Record a file's stat, unless it changed in the last two seconds (it may change again within the same tick)."""
    if stat is not None and stat[1] < since_ns - 2_000_000_000:
        stats["files"][key] = stat


def load_folders(folders: Sequence[Path], max_bytes: int, log: Callable[[str], None], previous: "Index | None" = None,
                 stats: dict | None = None) -> tuple[list[Article], list[Skipped]]:
    """Articles of several folders (e.g. the seeds plus the chat's uploads); a later folder's article wins an id clash.

    With ``previous`` (the index being updated), files unchanged since it was built are not read again;
    ``stats`` collects every file's stat for the next update.
    """
    by_id: dict[str, Article] = {}
    skipped: list[Skipped] = []
    known = previous.sources() if previous is not None else {}
    stats = stats if stats is not None else {}
    stats.setdefault("files", {})
    stats.setdefault("metadata", {})
    since_ns = time.time_ns()
    for folder in folders:
        articles, folder_skipped = _load_folder(Path(folder), max_bytes, previous, known, stats, since_ns)
        skipped += folder_skipped
        for article in articles:
            if article.doc_id in by_id:
                log(f"{article.source} replaces {by_id[article.doc_id].source} (same article id {article.doc_id}).")
            by_id[article.doc_id] = article
    return sorted(by_id.values(), key=lambda a: a.doc_id), skipped


def _embed_texts(texts: list[str], embedder: Embedder, report: Report, what: str = "passage") -> np.ndarray:
    out = np.zeros((len(texts), embedder.dim), np.float32) if texts else np.zeros((0, 0), np.float32)
    # A backend may embed the sentence windows (most of a build's tokens) more cheaply than the passages: the onnx
    # backend's ``embed_windows``; the others embed both as passages.
    embed = embedder.embed_passages
    if what == "sentence":
        embed = getattr(embedder, "embed_windows", embed)
    with report(len(texts), f"Embedding {what}s", what) as bar:
        # Shortest first: a batch is padded to its longest text, so similar lengths waste the least work.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(texts), EMBED_BATCH):
            rows = order[start:start + EMBED_BATCH]
            out[rows] = embed([texts[i] for i in rows])
            bar.update(len(rows))
    return out


def _is_up_to_date(previous: Index, corpus: dict, digest: str, settings: Settings) -> bool:
    params = previous.params
    return (params["corpus"] == corpus and params.get("articles_digest") == digest
            and params["chunking"] == chunking_params(settings)
            and params.get("bm25") == BM25_PARAMS
            and params.get("sentences", {}).get("window") == (settings.sentence_window if settings.sentence_vectors else None)
            and params.get("dense", {"type": "flat"})["type"] == _dense_kind(len(previous.chunks), settings)
            and params.get("backend", {"type": "faiss"}) == _backend(settings))


def _dense_kind(passages: int, settings: Settings) -> str:
    """``params.json["dense"]["type"]``: a Milvus-backed folder keeps no FAISS index (Milvus searches the vectors)."""
    return "milvus" if _backend(settings)["type"] == "milvus" else dense_kind(passages, settings)


def _backend(settings: Settings) -> dict:
    """Where the index is searched (``params.json["backend"]``): the settings, else what the index records."""
    return backend_params(settings, recorded_backend(settings.index_dir), Path(settings.index_dir))


def build_index(folder: Path | Sequence[Path], settings: Settings, embedder: Embedder, progress: bool = False,
                log: Callable[[str], None] = lambda message: None, wait: bool = True,
                listener: Listener | None = None) -> BuildReport:
    """Build or update the index at ``settings.index_dir`` from the articles in one or more folders.

    Another build of the same index is waited for (``log`` says so); with ``wait=False`` it is an ``IndexBusy``
    error instead. Progress: a bar when ``progress`` (a terminal), else a line through ``log`` every
    ``settings.progress_seconds``; ``listener(stage, done, total)`` hears every step (``article``, ``passage``,
    ``sentence``)."""

    def report(total: int, desc: str, unit: str) -> Progress:
        return Progress(total, desc, unit, progress, log, listener, settings.progress_seconds)

    store = prepare_backend(_backend(settings), embedder.model_id, embedder.dim)  # Milvus problems before any work
    try:
        with writer_lock(settings.index_dir, wait, log):
            return _build_locked(folder, settings, embedder, report, log, store)
    finally:
        if store is not None:
            store.close()


def _build_locked(folder: Path | Sequence[Path], settings: Settings, embedder: Embedder, report: Report,
                  log: Callable[[str], None], store: MilvusStore | None = None) -> BuildReport:
    started = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = round(timings.get(name, 0.0) + now - since, 4)
        return now

    folders = [folder] if isinstance(folder, (str, Path)) else list(folder)
    path = Path(settings.index_dir)
    previous = None
    if (path / "params.json").exists():
        try:
            previous = load_index(path)
        except RagError as err:
            log(f"The existing index is not reused: {err}")
        else:
            built_by = previous.params["embedder"]["id"]
            if built_by != embedder.model_id:
                log(f"The existing index was built with {built_by}: every passage is embedded again with "
                    f"{embedder.model_id}.")
                previous = None
    try:
        return _build(folders, settings, embedder, report, log, previous, started, timings, lap, store)
    except IndexDamaged as err:  # found only while reading the previous index's rows: build from scratch
        if previous is None:
            raise
        log(f"The existing index is not reused: {err}")
        return _build(folders, settings, embedder, report, log, None, started, timings, lap, store)


def _build(folders: list, settings: Settings, embedder: Embedder, report: Report, log: Callable[[str], None],
           previous: Index | None, started: float, timings: dict, lap: Callable[[str, float], float],
           store: MilvusStore | None = None) -> BuildReport:
    path = Path(settings.index_dir)
    clock = lap("load_previous", started)
    stats: dict = {}
    articles, skipped = load_folders(folders, settings.max_article_bytes, log, previous, stats)
    for item in skipped:
        log(item.reason)
    undated = [a for a in articles if a.date is None]
    for article in undated[:UNDATED_NAMED]:
        log(f"{Path(article.source).name} has no date (none in its header or metadata.json); "
            f"answers will cite it as undated.")
    if len(undated) > UNDATED_NAMED:  # a folder without any dates (e.g. an encyclopedia) gets one line, not hundreds
        log(f"… and {len(undated) - UNDATED_NAMED} more articles without a date.")
    with report(len(articles), "Reading articles", "article") as bar:
        bar.update(len(articles))
    corpus = {a.doc_id: a.sha256 for a in articles}
    clock = lap("read_articles", clock)
    digest = articles_digest(articles)
    if previous is not None and _is_up_to_date(previous, corpus, digest, settings):
        again = 0
        if store is not None:  # an interrupted update may have left Milvus behind the folder
            fill = _Vectors(previous, embedder, np.arange(len(previous.chunks)))
            sync_index(store, path, log, fill)
            again = fill.embedded_again
        return BuildReport(str(path), len(articles), len(previous.chunks), again, len(previous.chunks) - again,
                           round(time.perf_counter() - started, 3), True, [s.reason for s in skipped],
                           dense=previous.params.get("dense", {"type": "flat"})["type"], timings=timings)

    # 1. Which articles keep their chunks (same text, title and date, same chunking): the rest is chunked anew.
    same_chunking = previous is not None and previous.params["chunking"] == chunking_params(settings)
    same_tokens = previous is not None and previous.params.get("bm25") == BM25_PARAMS
    old_corpus = previous.params["corpus"] if previous is not None else {}
    starts = previous.article_chunk_starts() if same_chunking else None
    parts: list[Part] = []
    for article in articles:
        part = Part(article)
        if same_chunking and old_corpus.get(article.doc_id) == article.sha256:
            row = previous.articles.row(article.doc_id)
            old = previous.articles[article.doc_id]
            if (old.title, old.date) == (article.title, article.date):
                part.chunk_rows = (int(starts[row]), int(starts[row + 1]))
                part.article_row = row if old == article else None
        if part.chunk_rows is None:
            part.chunks = chunk_article(article, settings.chunk_tokens, settings.chunk_overlap, embedder.token_count)
        parts.append(part)
    total = sum(p.count for p in parts)
    removed = len(set(old_corpus) - set(corpus))
    clock = lap("chunk", clock)

    # 2. Vectors: kept rows, else an earlier vector of the same text, else embedded (each distinct text once).
    old_hashes = previous.chunk_hashes() if previous is not None else np.zeros(0, "S16")
    old_row_of = None
    hashes = np.empty(total, dtype="S16")
    source = np.full(total, -1, np.int64)     # previous row whose vector is re-used
    todo: dict[bytes, tuple[Chunk, list[int]]] = {}
    position = 0
    for part in parts:
        if part.chunk_rows is not None:
            rows = np.arange(*part.chunk_rows)
            hashes[position:position + len(rows)] = old_hashes[rows]
            source[position:position + len(rows)] = rows
            position += len(rows)
            continue
        for chunk in part.chunks:
            key = chunk.text_hash.encode()
            hashes[position] = key
            if old_row_of is None:
                old_row_of = {h: i for i, h in enumerate(old_hashes.tolist())}
            row = old_row_of.get(key)
            if row is not None:
                source[position] = row
            else:
                todo.setdefault(key, (chunk, []))[1].append(position)
            position += 1
    reused = int((source >= 0).sum())
    texts = [chunk.indexed_text for chunk, _ in todo.values()]
    clock = lap("plan", clock)
    fresh = _embed_texts(texts, embedder, report)
    clock = lap("embed", clock)
    dim = int(fresh.shape[1]) if len(fresh) else \
        (int(previous.params["embedder"]["dim"]) if previous is not None and len(previous.chunks) else embedder.dim)
    vectors = np.empty((total, dim), np.float32)
    filled = np.ones(total, bool)
    if store is not None:  # Milvus holds the vectors of kept articles: only re-chunked ones are written to it
        filled = np.repeat([p.chunk_rows is None for p in parts], [p.count for p in parts]).astype(bool)
    keep = np.flatnonzero((source >= 0) & filled)
    again = 0  # kept passages embedded once more: Milvus lost them in an interrupted update
    if len(keep):
        vectors[keep], again = _previous_vectors(previous, source[keep], store, embedder)
    for (_, positions), vector in zip(todo.values(), fresh):
        vectors[positions] = vector
    clock = lap("vectors", clock)
    sentences, sentences_embedded = None, 0
    if settings.sentence_vectors:
        passages = dict(zip(texts, fresh))
        sentences, sentences_embedded = _sentence_vectors(parts, source, previous, embedder, passages, dim,
                                                          settings.sentence_window, report)
        clock = lap("sentences", clock)

    # 3. BM25 tokens: kept rows' token ids are copied, new chunks are tokenised.
    old_tokens = previous.bm25.token_table() if same_tokens else None
    docs: list[int | list[str]] = []
    for part in parts:
        if part.chunk_rows is not None and old_tokens is not None:
            docs.extend(range(*part.chunk_rows))
        else:
            chunks = part.chunks if part.chunks is not None else previous.chunks[part.chunk_rows[0]:part.chunk_rows[1]]
            docs.extend(tokenize(c.indexed_text) for c in chunks)
    tokens = merge_tables(old_tokens, docs)
    clock = lap("tokens", clock)

    dense, dense_info = None, {"type": "milvus"}
    if store is None:
        dense, dense_info = build_dense(vectors, dim, settings, previous.dense if previous is not None else None, log)
    clock = lap("dense", clock)
    params = {
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "embedder": {"id": embedder.model_id, "dim": dim},
        "chunking": chunking_params(settings),
        "bm25": BM25_PARAMS,
        "dense": dense_info,
        "corpus": corpus,
        "articles_digest": digest,
        "backend": _backend(settings),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if sentences is not None:
        params["sentences"] = _sentence_params(sentences, settings.sentence_window)
    swap_in(path, params, lambda tmp: write_folder(tmp, params, parts, previous, dense, tokens, hashes, stats,
                                                     sentences))
    clock = lap("write", clock)
    if store is not None:  # Milvus: upsert new and changed articles, delete removed ones
        fill = _Vectors(previous, embedder, source, vectors, filled)
        sync_index(store, path, log, fill)
        again += fill.embedded_again
        lap("milvus", clock)
    return BuildReport(str(path), len(articles), total, len(texts) + again, reused - again,
                       round(time.perf_counter() - started, 3),
                       False, [s.reason for s in skipped], removed, dense_info["type"], timings, sentences_embedded)


def _embed_again(embedder: Embedder, texts: list[str]) -> np.ndarray:
    """Passages a Milvus update lacks, embedded again (rare: after an interrupted update), without a progress bar."""
    return _embed_texts(texts, embedder, lambda total, desc, unit: Progress(total, desc, unit))


def _previous_vectors(previous: Index, rows: np.ndarray, store: MilvusStore | None,
                      embedder: Embedder) -> tuple[np.ndarray, int]:
    """Vectors of the previous index's ``rows``: from its FAISS index, else from Milvus (a Milvus-backed folder keeps
    no vectors of its own; a passage Milvus lacks, after an interrupted update, is embedded again), and how many
    were embedded again."""
    if previous.dense is not None:
        return reconstruct(previous.dense, rows), 0
    chunks = [previous.chunks[int(row)] for row in rows]
    found = store.vectors([c.chunk_id for c in chunks])
    missing = [c.indexed_text for c in chunks if c.chunk_id not in found]
    again = iter(_embed_again(embedder, missing)) if missing else iter(())
    return np.asarray([found[c.chunk_id] if c.chunk_id in found else next(again) for c in chunks],
                      np.float32), len(missing)


class _Vectors:
    """``vectors_of(rows)`` for a Milvus update, by row of the new index: the build's own vectors where it made them
    (new and changed articles); else, for a kept article Milvus lacks (only after an interrupted update), the previous
    FAISS index's vector or the passage embedded again. ``source`` maps new rows to previous ones."""

    def __init__(self, previous: Index | None, embedder: Embedder, source: np.ndarray,
                 vectors: np.ndarray | None = None, filled: np.ndarray | None = None) -> None:
        self.previous, self.embedder, self.source = previous, embedder, source
        self.vectors, self.filled = vectors, filled
        self.embedded_again = 0  # for the build's report

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, np.int64)
        have = self.filled[rows] if self.filled is not None else np.zeros(len(rows), bool)
        dim = self.vectors.shape[1] if self.vectors is not None else int(self.previous.params["embedder"]["dim"])
        out = np.empty((len(rows), dim), np.float32)
        if have.any():
            out[have] = self.vectors[rows[have]]
        old = self.source[rows[~have]]
        if len(old) and self.previous.dense is not None:
            out[~have] = reconstruct(self.previous.dense, old)
        elif len(old):
            out[~have] = _embed_again(self.embedder, [self.previous.chunks[int(row)].indexed_text for row in old])
            self.embedded_again += len(old)
        return out


def _sentence_params(sentences: SentenceVectors, window: int) -> dict:
    return {"count": int(sentences.offsets[-1]), "dtype": "float16", "window": window}


def _sentence_vectors(parts: list[Part], source: np.ndarray, previous: Index | None, embedder: Embedder,
                      passages: dict[str, np.ndarray], dim: int,
                      window: int, report: Report) -> tuple[SentenceVectors, int]:
    """Every chunk's sentence vectors: copied from the previous index for re-used chunks, else embedded
    (each distinct sentence text once: overlapping chunks share sentences; a window that is also a passage's
    text, as a chunk of one or two sentences is, takes the vector just embedded for the passage)."""
    same = previous is not None and previous.params.get("sentences", {}).get("window") == window
    old = previous.sentences if same else None
    pieces: list[np.ndarray | list[int]] = []
    todo: dict[str, int] = {}
    position = 0
    for part in parts:
        for i in range(part.count):
            row = int(source[position])
            if old is not None and row >= 0:
                pieces.append(old.of(row))
            else:
                chunk = part.chunks[i] if part.chunks is not None else previous.chunks[part.chunk_rows[0] + i]
                pieces.append([todo.setdefault(text, len(todo)) for text in sentence_texts(chunk, window)])
            position += 1
    new = [text for text in todo if text not in passages]
    embedded = _embed_texts(new, embedder, report, "sentence")
    vector_of = dict(zip(new, embedded)) | {text: passages[text] for text in todo if text in passages}
    fresh = np.array([vector_of[text] for text in todo], np.float32).reshape(len(todo), dim)
    offsets = row_offsets([len(p) for p in pieces])
    vectors = np.empty((int(offsets[-1]), dim), np.float16)
    for piece, start, stop in zip(pieces, offsets[:-1], offsets[1:]):
        if stop > start:
            vectors[start:stop] = fresh[piece] if isinstance(piece, list) else piece
    return SentenceVectors(vectors, offsets), len(new)
