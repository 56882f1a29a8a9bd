"""The on-disk index: articles, chunks, a FAISS index of chunk vectors, a BM25 index, ``params.json``.

Layout of ``index/<name>/`` (no pickle anywhere)::

    params.json      format version, package version, embedder id and dimension,
                     chunking and BM25 settings, corpus content hashes, file checksums
    articles.jsonl   one article a line, with the exact text all offsets refer to
    chunks.jsonl     one chunk a line, in FAISS row order
    dense.faiss      FAISS inner-product index of L2-normalised chunk vectors
    bm25/            bm25s sparse matrices (.npy) and vocabulary (.json)

A build writes everything into a temporary sibling folder and swaps it in
with renames, so an interrupted build leaves the previous index in place.
Re-building reuses the vectors of chunks whose text did not change.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from rag import __version__
from rag.chunking import Chunk, chunk_articles
from rag.corpus import Article, Skipped, load_folder
from rag.embedding import Embedder
from rag.errors import RagError
from rag.lexical import BM25Index
from rag.settings import Settings

FORMAT_VERSION = 1
EMBED_BATCH = 16
BM25_PARAMS = {"k1": 1.5, "b": 0.75, "stemmer": "snowball-german", "stopwords": "bm25s-de", "tokenizer": 1}


@dataclass
class Index:
    """A loaded index, ready to search."""

    path: Path
    params: dict
    articles: dict[str, Article]
    chunks: list[Chunk]
    dense: object
    bm25: BM25Index

    def vectors(self) -> np.ndarray:
        """The stored chunk vectors, in row order (for re-use on rebuild)."""
        return self.dense.reconstruct_n(0, self.dense.ntotal) if self.dense.ntotal else np.zeros((0, 0), np.float32)


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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _index_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "params.json")


def _write_jsonl(path: Path, rows) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def _read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def chunking_params(settings: Settings) -> dict:
    return {"chunk_tokens": settings.chunk_tokens, "chunk_overlap": settings.chunk_overlap, "splitter": "german-sentences-1", "context_header": 1}


def _restore_interrupted_swap(path: Path) -> None:
    """A crash between the two renames of a swap leaves only the old copy; put it back."""
    old = path.with_name(f".{path.name}.old")
    if not path.exists() and old.exists():
        old.rename(path)


def _new_dense_index(vectors: np.ndarray, dim: int):
    import faiss

    dense = faiss.IndexFlatIP(dim)
    if len(vectors):
        dense.add(vectors)
    return dense


def _embed(chunks: list[Chunk], embedder: Embedder, cache: dict[str, np.ndarray], progress: bool) -> tuple[np.ndarray, int]:
    """Vectors for all chunks, embedding only texts not in ``cache``; returns (vectors, embedded count)."""
    from tqdm import tqdm

    todo = [c for c in chunks if c.text_hash not in cache]
    unique = list({c.text_hash: c for c in todo}.values())
    with tqdm(total=len(unique), desc="Embedding passages", unit="passage", disable=not progress) as bar:
        for start in range(0, len(unique), EMBED_BATCH):
            batch = unique[start:start + EMBED_BATCH]
            for chunk, vector in zip(batch, embedder.embed_passages([c.indexed_text for c in batch])):
                cache[chunk.text_hash] = vector
            bar.update(len(batch))
    vectors = np.stack([cache[c.text_hash] for c in chunks]).astype(np.float32) if chunks else np.zeros((0, embedder.dim), np.float32)
    return vectors, len(unique)


def write_index(path: Path, params: dict, articles: list[Article], chunks: list[Chunk], vectors: np.ndarray) -> None:
    """Write a complete index into a temporary folder, then swap it in atomically."""
    import faiss

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _restore_interrupted_swap(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    old = path.with_name(f".{path.name}.old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        _write_jsonl(tmp / "articles.jsonl", (asdict(a) for a in articles))
        _write_jsonl(tmp / "chunks.jsonl", (asdict(c) for c in chunks))
        faiss.write_index(_new_dense_index(vectors, params["embedder"]["dim"]), str(tmp / "dense.faiss"))
        BM25Index.build([c.indexed_text for c in chunks], BM25_PARAMS["k1"], BM25_PARAMS["b"]).save(tmp / "bm25")
        params = dict(params, files={str(p.relative_to(tmp)): {"sha256": _sha256(p), "bytes": p.stat().st_size}
                                     for p in _index_files(tmp)})
        (tmp / "params.json").write_text(json.dumps(params, indent=2, ensure_ascii=False), encoding="utf-8")
        for p in tmp.rglob("*"):
            if p.is_file():
                with p.open("rb") as handle:
                    os.fsync(handle.fileno())
        shutil.rmtree(old, ignore_errors=True)
        if path.exists():
            path.rename(old)
        tmp.rename(path)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_folders(folders: Sequence[Path], max_bytes: int, log: Callable[[str], None]) -> tuple[list[Article], list[Skipped]]:
    """Articles of several folders (e.g. the seeds plus the chat's uploads); a later folder's article wins an id clash."""
    by_id: dict[str, Article] = {}
    skipped: list[Skipped] = []
    for folder in folders:
        articles, folder_skipped = load_folder(Path(folder), max_bytes)
        skipped += folder_skipped
        for article in articles:
            if article.doc_id in by_id:
                log(f"{article.source} replaces {by_id[article.doc_id].source} (same article id {article.doc_id}).")
            by_id[article.doc_id] = article
    return sorted(by_id.values(), key=lambda a: a.doc_id), skipped


def build_index(folder: Path | Sequence[Path], settings: Settings, embedder: Embedder, progress: bool = False,
                log: Callable[[str], None] = lambda message: None) -> BuildReport:
    """Build or update the index at ``settings.index_dir`` from the articles in one or more folders."""
    started = time.perf_counter()
    folders = [folder] if isinstance(folder, (str, Path)) else list(folder)
    articles, skipped = load_folders(folders, settings.max_article_bytes, log)
    for item in skipped:
        log(item.reason)
    path = Path(settings.index_dir)
    corpus = {a.doc_id: a.sha256 for a in articles}
    previous = None
    if (path / "params.json").exists():
        try:
            previous = load_index(path, embedder.model_id)
        except RagError as err:
            log(f"The existing index is not reused: {err}")
    if previous and previous.params["corpus"] == corpus and previous.params["chunking"] == chunking_params(settings):
        return BuildReport(str(path), len(articles), len(previous.chunks), 0, len(previous.chunks),
                           round(time.perf_counter() - started, 3), True, [s.reason for s in skipped])
    chunks = chunk_articles(articles, settings.chunk_tokens, settings.chunk_overlap, embedder.token_count)
    cache: dict[str, np.ndarray] = {}
    if previous is not None:
        cache = dict(zip((c.text_hash for c in previous.chunks), previous.vectors()))
    reusable = sum(1 for c in chunks if c.text_hash in cache)
    vectors, embedded = _embed(chunks, embedder, cache, progress)
    params = {
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "embedder": {"id": embedder.model_id, "dim": int(vectors.shape[1]) if len(vectors) else embedder.dim},
        "chunking": chunking_params(settings),
        "bm25": BM25_PARAMS,
        "corpus": corpus,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_index(path, params, articles, chunks, vectors)
    return BuildReport(str(path), len(articles), len(chunks), embedded, reusable,
                       round(time.perf_counter() - started, 3), False, [s.reason for s in skipped])


def _read_params(path: Path) -> dict:
    params_path = path / "params.json"
    if not path.exists() or not params_path.exists():
        raise RagError(f"There is no index at {path}; build one with `rag index`.")
    try:
        params = json.loads(params_path.read_text(encoding="utf-8"))
        params["embedder"]["id"], params["files"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
        raise RagError(f"The index at {path} is damaged (params.json is unreadable); rebuild it with `rag index`.") from None
    if params.get("format_version") != FORMAT_VERSION:
        raise RagError(f"The index at {path} has format version {params.get('format_version')}, this program reads "
                       f"version {FORMAT_VERSION}; rebuild it with `rag index`.")
    return params


def verify_files(path: Path, params: dict) -> None:
    """Every file listed in params.json exists with its recorded size and checksum."""
    for name, expected in params["files"].items():
        file = path / name
        if not file.exists() or file.stat().st_size != expected["bytes"] or _sha256(file) != expected["sha256"]:
            raise RagError(f"The index at {path} is damaged ({name} is missing or altered); rebuild it with `rag index`.")


def load_index(path: Path, expected_embedder: str | None = None, verify: bool = True) -> Index:
    """Load and check an index; any problem is one clear ``RagError`` sentence."""
    import faiss

    path = Path(path)
    _restore_interrupted_swap(path)
    params = _read_params(path)
    if expected_embedder is not None and params["embedder"]["id"] != expected_embedder:
        raise RagError(f"The index at {path} was built with the embedding model {params['embedder']['id']}, "
                       f"but the current setting is {expected_embedder}; rebuild it with `rag index` or change the setting.")
    if verify:
        verify_files(path, params)
    try:
        articles = {row["doc_id"]: Article(**row) for row in _read_jsonl(path / "articles.jsonl")}
        chunks = [Chunk(**row) for row in _read_jsonl(path / "chunks.jsonl")]
        dense = faiss.read_index(str(path / "dense.faiss"))
        bm25 = BM25Index.load(path / "bm25")
    except Exception as err:  # any parse failure of any file means the same thing to the user
        raise RagError(f"The index at {path} is damaged ({type(err).__name__}); rebuild it with `rag index`.") from None
    if dense.ntotal != len(chunks) or bm25.size != len(chunks) or dense.d != params["embedder"]["dim"]:
        raise RagError(f"The index at {path} is inconsistent (vector, BM25 and chunk counts differ); rebuild it with `rag index`.")
    return Index(path, params, articles, chunks, dense, bm25)
