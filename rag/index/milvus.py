"""Milvus as the searched store: one row per passage, dense and BM25 search with a date filter, kept in step with
the local index by article.

Why Milvus: a newsroom archive shared by many journalists outgrows one machine; Milvus is an existing distributed
engine (the same client code talks to Milvus Lite in a local ``.db`` file, a standalone server or a cluster).
What stays local: the index folder keeps the articles' texts and offsets (quotes are verified there), the chunk
table, and the sentence vectors, which only re-score the candidates Milvus returns (reading them from a local
file costs ~1 ms a question; fetching ~500 vectors a question from Milvus would cost more than the search).

A row: ``chunk_id`` (primary key, ``<doc_id>#<position>``), ``doc_id``, ``position``, the publication date as
INT64 ``YYYYMMDD`` (0 = unknown) with an INVERTED index (Milvus Lite has no STL_SORT), ``start``/``end``, the
indexed text (title and month header + passage) under a German analyzer, its 384-d vector, a BM25 sparse vector
made by a Milvus ``Function`` from the text, and ``signature``: a hash of the article's date and chunk texts,
stored on every row of the article, so an update sees from Milvus alone which articles are current.

Which collection belongs to which index: the collection's description records the embedding model and the
analyzer; opening a collection made with another model, dimension or analyzer is a one-sentence ``RagError``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from rag.errors import RagError
from rag.index.dates import DateRange, date_number
from rag.lang.de import stopwords

SCHEMA_VERSION = 1
TEXT_MAX_BYTES = 65_535
ID_MAX_BYTES = 512
WRITE_BATCH = 500
QUERY_BATCH = 10_000
TIMEOUT_SECONDS = 30.0
TOKEN_ENV = "RAG_MILVUS_TOKEN"
# pymilvus pings an idle connection every 10 s; Milvus's gRPC server allows that only during calls and answers
# an idle client's third ping with GOAWAY "too_many_pings" (seen against the milvus binary after ~40 s idle, and
# a following call can fail). A chat waits idle between questions, so ping only while a call is running.
GRPC_OPTIONS = {"grpc.keepalive_permit_without_calls": 0}


def analyzer_params() -> dict:
    """Milvus's German analyzer: standard tokenizer, lower case, the same stop words as the local BM25, Snowball
    German stems (so "Schornsteinfeger" matches "Schornsteinfegern"). Milvus-lite 3.x ignores the stemmer
    silently, hence the pin to 2.5.1 and the stemmer test."""
    return {"tokenizer": "standard",
            "filter": ["lowercase", {"type": "stop", "stop_words": sorted(stopwords())},
                       {"type": "stemmer", "language": "german"}]}


def is_local(uri: str) -> bool:
    return not uri.startswith(("http://", "https://", "tcp://", "unix:"))


def normalise_uri(uri: str) -> str:
    """A server URL as given; a local Milvus Lite file as an absolute path (later commands may run elsewhere)."""
    uri = uri.strip()
    if not uri:
        raise RagError("The Milvus URI is empty; give a local file path ending in .db or http(s)://host:port.")
    if not is_local(uri):
        return uri
    if not uri.endswith(".db"):
        raise RagError(f"The Milvus URI {uri} is neither http(s)://host:port nor a local file path ending in .db.")
    return str(Path(uri).expanduser().resolve())


def signature(date: str | None, text_hashes: Iterable[str]) -> str:
    """What makes an article's rows current: its date and the texts of its chunks (each text hash covers the
    title and month header too)."""
    digest = hashlib.sha256(str(date_number(date)).encode())
    for text_hash in text_hashes:
        digest.update(text_hash.encode())
    return digest.hexdigest()[:32]


@dataclass(frozen=True)
class Candidate:
    """One passage Milvus returned: where it is in the local index, and its score (cosine or BM25)."""

    doc_id: str
    position: int
    score: float


@dataclass(frozen=True)
class SyncReport:
    """What an update changed in Milvus."""

    upserted_articles: int
    deleted_articles: int
    rows: int


def _refused(err: BaseException) -> bool:
    """Whether the server turned the credentials down: a Milvus with authorization enabled answers a missing or
    wrong token with the gRPC status UNAUTHENTICATED, which pymilvus wraps, when it comes on the first call, in a
    "Fail connecting … server unavailable" exception (the status is only on its cause)."""
    import grpc

    for _ in range(8):
        if err is None:
            return False
        status = getattr(err, "code", None)
        if callable(status) and status() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            return True
        err = err.__cause__ or err.__context__
    return False


def _failure(uri: str, err: BaseException) -> RagError:
    """One sentence for what a Milvus client error means to the user."""
    code = getattr(err, "code", None)
    message = str(getattr(err, "message", "") or err)
    lowered = message.lower()
    if _refused(err) or code == 1800 or "auth" in lowered or "credential" in lowered or "permission" in lowered \
            or "token" in lowered or "password" in lowered:
        return RagError(f"Milvus at {uri} rejected the credentials; check the token in {TOKEN_ENV}.")
    if "opened by another program" in lowered or "open local milvus failed" in lowered:
        return RagError(f"The local Milvus file {uri} cannot be opened (missing folder, or another process has it "
                        f"open).")
    if "fail connecting" in lowered or "unavailable" in lowered or "deadline" in lowered or code == 2:
        return RagError(f"Milvus at {uri} cannot be reached; check --milvus-uri and that the server is running.")
    return RagError(f"Milvus at {uri} failed: {message.splitlines()[0] if message else type(err).__name__}.")


def _quiet() -> None:
    """pymilvus logs a warning for every query iterator on Milvus Lite (no server timestamp), and milvus-lite 2.5.1
    imports ``pkg_resources`` (hence ``setuptools<81``), which warns on every start: neither is news to a user;
    errors still surface as ``RagError``."""
    import logging

    logging.getLogger("pymilvus").setLevel(logging.ERROR)


class MilvusStore:
    """One collection of one Milvus (Lite file, server or cluster) through ``pymilvus.MilvusClient``."""

    def __init__(self, client, uri: str, collection: str) -> None:
        self.client = client
        self.uri = uri
        self.collection = collection

    @classmethod
    def connect(cls, uri: str, collection: str, token: str | None = None) -> "MilvusStore":
        """A client of the Milvus at ``uri`` (token: argument, else ``RAG_MILVUS_TOKEN``); any failure is a
        ``RagError`` sentence."""
        import warnings

        warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
        try:
            from pymilvus import MilvusClient
        except ImportError:
            raise RagError("The Milvus backend needs the milvus extra; run: pip install -e '.[milvus]'") from None
        _quiet()  # after the import: importing pymilvus configures its logger
        uri = normalise_uri(uri)
        token = token if token is not None else os.environ.get(TOKEN_ENV, "")
        try:
            client = MilvusClient(uri, token=token, timeout=TIMEOUT_SECONDS, grpc_options=GRPC_OPTIONS)
            client.has_collection(collection)  # the first call that needs the server (and the credentials)
        except Exception as err:  # pymilvus raises MilvusException and grpc errors alike
            raise _failure(uri, err) from None
        return cls(client, uri, collection)

    def _call(self, method: str, *args, **kwargs):
        try:
            return getattr(self.client, method)(*args, **kwargs)
        except Exception as err:
            raise _failure(self.uri, err) from None

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # closing a client whose server is gone has nothing left to do
            pass

    # ------------------------------------------------------------------------------------------- collection

    def _description(self, embedder_id: str, dim: int) -> str:
        return json.dumps({"rag_schema": SCHEMA_VERSION, "embedder": embedder_id, "dim": dim}, sort_keys=True)

    def prepare(self, embedder_id: str, dim: int) -> None:
        """Create the collection when missing, else check that it was made for this model and analyzer."""
        if self._call("has_collection", self.collection):
            self.check(embedder_id, dim)
            return
        from pymilvus import DataType, Function, FunctionType

        schema = self._call("create_schema", auto_id=False, description=self._description(embedder_id, dim))
        schema.add_field("chunk_id", DataType.VARCHAR, is_primary=True, max_length=ID_MAX_BYTES)
        schema.add_field("doc_id", DataType.VARCHAR, max_length=ID_MAX_BYTES)
        schema.add_field("position", DataType.INT64)
        schema.add_field("date", DataType.INT64)
        schema.add_field("start", DataType.INT64)
        schema.add_field("end", DataType.INT64)
        schema.add_field("signature", DataType.VARCHAR, max_length=64)
        schema.add_field("text", DataType.VARCHAR, max_length=TEXT_MAX_BYTES, enable_analyzer=True,
                         analyzer_params=analyzer_params())
        schema.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["text"],
                                     output_field_names=["sparse"]))
        index_params = self._call("prepare_index_params")
        # AUTOINDEX lets a server or cluster choose (HNSW there); Milvus Lite makes it an exact FLAT index.
        index_params.add_index("dense", index_type="AUTOINDEX", metric_type="IP")
        index_params.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        index_params.add_index("date", index_type="INVERTED")
        index_params.add_index("doc_id", index_type="INVERTED")
        self._call("create_collection", self.collection, schema=schema, index_params=index_params)

    def check(self, embedder_id: str, dim: int) -> None:
        """The collection exists and was made for ``embedder_id`` (``dim``) with our analyzer; else a sentence."""
        where = f"The Milvus collection {self.collection} at {self.uri}"
        if not self._call("has_collection", self.collection):
            raise RagError(f"{where} does not exist; build it with `rag index DIR --backend milvus`.")
        info = self._call("describe_collection", self.collection)
        try:
            made = json.loads(info.get("description") or "{}")
        except ValueError:
            made = {}
        if made.get("rag_schema") != SCHEMA_VERSION:
            raise RagError(f"{where} was not made by this program (schema {made.get('rag_schema')}); use another "
                           f"--milvus-collection.")
        if (made.get("embedder"), made.get("dim")) != (embedder_id, dim):
            raise RagError(f"{where} was built with the embedding model {made.get('embedder')} ({made.get('dim')} "
                           f"dimensions), not {embedder_id} ({dim}); rebuild it or use another --milvus-collection.")
        fields = {f["name"]: f for f in info.get("fields", [])}
        analyzer = fields.get("text", {}).get("params", {}).get("analyzer_params")
        try:
            analyzer = json.loads(analyzer) if isinstance(analyzer, str) else analyzer
        except ValueError:
            analyzer = None
        if analyzer != analyzer_params():
            raise RagError(f"{where} was built with another text analyzer than this program's German one; rebuild "
                           f"it or use another --milvus-collection.")
        self._call("load_collection", self.collection)

    def drop(self) -> None:
        if self._call("has_collection", self.collection):
            self._call("drop_collection", self.collection)

    # ------------------------------------------------------------------------------------------- writing

    def signatures(self) -> dict[str, str]:
        """``doc_id → signature`` of every article in the collection (read from the articles' first rows)."""
        out: dict[str, str] = {}
        iterator = self._call("query_iterator", self.collection, batch_size=QUERY_BATCH, filter="position == 0",
                              output_fields=["doc_id", "signature"])
        try:
            while True:
                batch = iterator.next()
                if not batch:
                    break
                out.update((row["doc_id"], row["signature"]) for row in batch)
        except RagError:
            raise
        except Exception as err:
            raise _failure(self.uri, err) from None
        finally:
            iterator.close()
        return out

    def delete_articles(self, doc_ids: Sequence[str]) -> None:
        for start in range(0, len(doc_ids), WRITE_BATCH):
            ids = json.dumps(list(doc_ids[start:start + WRITE_BATCH]), ensure_ascii=False)
            self._call("delete", self.collection, filter=f"doc_id in {ids}")

    def insert(self, rows: Sequence[dict]) -> None:
        for start in range(0, len(rows), WRITE_BATCH):
            self._call("upsert", self.collection, list(rows[start:start + WRITE_BATCH]))

    def count(self) -> int:
        result = self._call("query", self.collection, filter="", output_fields=["count(*)"])
        return int(result[0]["count(*)"])

    def vectors(self, chunk_ids: Sequence[str]) -> dict[str, list[float]]:
        """``chunk_id → stored vector`` of those of ``chunk_ids`` the collection holds: an update re-uses them for
        passages whose text it already embedded, since a Milvus-backed index folder keeps no vectors of its own."""
        found: dict[str, list[float]] = {}
        unique = list(dict.fromkeys(chunk_ids))
        for start in range(0, len(unique), WRITE_BATCH):
            ids = json.dumps(unique[start:start + WRITE_BATCH], ensure_ascii=False)
            rows = self._call("query", self.collection, filter=f"chunk_id in {ids}", output_fields=["chunk_id", "dense"])
            found.update((row["chunk_id"], row["dense"]) for row in rows)
        return found

    # ------------------------------------------------------------------------------------------- searching

    def _search(self, data: list, field: str, n: int, dates: DateRange | None) -> list[Candidate]:
        # Milvus caps one search at 16,384 results; the retriever asks for ``candidates`` (100 by default).
        found = self._call("search", self.collection, data=data, anns_field=field, limit=min(n, 16_384),
                           filter=dates.milvus_filter() if dates else "", output_fields=["doc_id", "position"])
        return [Candidate(hit["entity"]["doc_id"], int(hit["entity"]["position"]), float(hit["distance"]))
                for hit in found[0]]

    def dense_search(self, vector: np.ndarray, n: int, dates: DateRange | None = None) -> list[Candidate]:
        """The ``n`` passages (published within ``dates``) whose vectors have the highest inner product with
        ``vector``; Milvus filters before it ranks, so there are ``n`` whenever that many match."""
        return self._search([np.asarray(vector, np.float32).reshape(-1).tolist()], "dense", n, dates)

    def bm25_search(self, text: str, n: int, dates: DateRange | None = None) -> list[Candidate]:
        """The ``n`` best BM25 passages for ``text`` (within ``dates``), analysed by Milvus's German analyzer."""
        return self._search([text], "sparse", n, dates)


def article_rows(doc_id: str, date: str | None, chunks: Sequence, vectors: np.ndarray) -> list[dict]:
    """The Milvus rows of one article's chunks (``vectors`` in chunk order)."""
    sig = signature(date, (c.text_hash for c in chunks))
    day = date_number(date)
    return [{"chunk_id": c.chunk_id, "doc_id": doc_id, "position": c.position, "date": day, "start": c.start,
             "end": c.end, "signature": sig, "text": _clip(c.indexed_text),
             "dense": np.asarray(v, np.float32).tolist()} for c, v in zip(chunks, vectors)]


def _clip(text: str) -> str:
    """A text within Milvus's VARCHAR limit (in bytes; chunks are ≤ 500 tokens, so this is a guard)."""
    data = text.encode("utf-8")
    return text if len(data) <= TEXT_MAX_BYTES else data[:TEXT_MAX_BYTES].decode("utf-8", "ignore")


def sync(store: MilvusStore, articles, chunks: Sequence, starts: np.ndarray, vectors_of: Callable[[np.ndarray], np.ndarray],
         log: Callable[[str], None] = lambda m: None) -> SyncReport:
    """Bring the collection in step with a local index: articles that are new or changed (by signature) are
    replaced, articles no longer in the index are deleted, current ones are not touched.

    ``articles`` maps doc id → article in index order, ``chunks`` is the chunk table, ``starts`` the first
    chunk row of every article (+ the total), ``vectors_of(rows)`` the stored vectors of those rows.
    A changed article's rows are deleted before its new ones are written, and every row carries the new
    signature only once all of them are in (the first row last), so an interrupted update is redone next time.
    """
    stored = store.signatures()
    wanted: dict[str, tuple[int, int, str]] = {}
    for i, doc_id in enumerate(articles):
        first, last = int(starts[i]), int(starts[i + 1])
        article = articles[doc_id]
        hashes = (chunks[row].text_hash for row in range(first, last))
        wanted[doc_id] = (first, last, signature(article.date, hashes))
    gone = [doc_id for doc_id in stored if doc_id not in wanted]
    changed = [doc_id for doc_id, (_, _, sig) in wanted.items() if stored.get(doc_id) != sig]
    if stored or store.count():  # an interrupted update may have left rows of an article without its first row
        store.delete_articles(gone + changed)
    rows = 0
    firsts: list[dict] = []
    pending: list[dict] = []
    for doc_id in changed:
        first, last, _ = wanted[doc_id]
        if last == first:
            continue
        article_chunks = [chunks[row] for row in range(first, last)]
        made = article_rows(doc_id, articles[doc_id].date, article_chunks, vectors_of(np.arange(first, last)))
        firsts.append(made[0])
        pending += made[1:]
        rows += len(made)
        if len(pending) >= WRITE_BATCH:
            store.insert(pending)
            pending = []
    store.insert(pending)
    store.insert(firsts)
    if changed or gone:
        log(f"Milvus {store.collection}: {len(changed)} articles written, {len(gone)} removed.")
    return SyncReport(len(changed), len(gone), rows)


def to_rows(candidates: Iterable[Candidate], row_of_article: Callable[[str], int | None], starts: np.ndarray
            ) -> dict[int, float]:
    """``{local chunk row: score}`` of Milvus candidates; a passage of an article the local index no longer has
    (Milvus not yet updated) is left out."""
    out: dict[int, float] = {}
    for hit in candidates:
        article = row_of_article(hit.doc_id)
        if article is None:
            continue
        row = int(starts[article]) + hit.position
        if row < int(starts[article + 1]):
            out[row] = hit.score
    return out


# ----------------------------------------------------------------------------------------------- the index's backend

def default_collection(index_dir: Path) -> str:
    """A collection name from the index folder's name (Milvus allows letters, digits and underscores)."""
    name = "".join(c if c.isascii() and (c.isalnum() or c == "_") else "_" for c in Path(index_dir).name)
    return f"rag_{name}"[:255]


def backend_params(settings, recorded: dict | None, index_dir: Path) -> dict:
    """What ``params.json["backend"]`` records: the settings' choice, else what the index already records (so
    later commands on the folder need no flags), else FAISS."""
    recorded = recorded or {"type": "faiss"}
    kind = settings.backend or recorded.get("type", "faiss")
    if kind != "milvus":
        return {"type": "faiss"}
    uri = settings.milvus_uri or recorded.get("uri")
    if not uri:
        raise RagError("--backend milvus needs --milvus-uri: a local file path ending in .db or http(s)://host:port.")
    collection = settings.milvus_collection or recorded.get("collection") or default_collection(index_dir)
    return {"type": "milvus", "uri": normalise_uri(uri), "collection": collection}


def open_store(params: dict) -> MilvusStore | None:
    """The Milvus collection an index's ``params.json`` names, checked against its embedder and our analyzer
    (None for a FAISS index)."""
    backend = params.get("backend") or {"type": "faiss"}
    if backend.get("type") != "milvus":
        return None
    store = MilvusStore.connect(backend["uri"], backend["collection"])
    store.check(params["embedder"]["id"], int(params["embedder"]["dim"]))
    return store


def prepare_backend(backend: dict, embedder_id: str, dim: int) -> MilvusStore | None:
    """Before a build: connect to the Milvus a backend names and create or check its collection, so a wrong URI,
    token, model or analyzer is one sentence before any embedding work (None for FAISS)."""
    if backend.get("type") != "milvus":
        return None
    store = MilvusStore.connect(backend["uri"], backend["collection"])
    store.prepare(embedder_id, dim)
    return store


def sync_index(store: MilvusStore, index_dir: Path, log: Callable[[str], None] = lambda m: None,
               vectors_of: Callable[[np.ndarray], np.ndarray] | None = None) -> SyncReport:
    """After a build (under its writer lock): bring the collection in step with the index just written.
    ``vectors_of(rows)``: the vectors of the index's rows (the build's own; default: the folder's FAISS index)."""
    from rag.index.dense import reconstruct
    from rag.index.store import load_index

    index = load_index(index_dir)
    try:
        return sync(store, index.articles, index.chunks, index.article_chunk_starts(),
                    vectors_of or (lambda rows: reconstruct(index.dense, rows)), log)
    finally:
        store.close()


def recorded_backend(index_dir: Path) -> dict | None:
    """``params.json["backend"]`` of the index at ``index_dir`` (None when there is none or it is unreadable: a
    build then starts from the settings alone)."""
    try:
        return json.loads((Path(index_dir) / "params.json").read_text(encoding="utf-8")).get("backend")
    except (OSError, ValueError, AttributeError):
        return None
