"""`open_retriever`: the default index follows the embedding model of the settings; other indexes are refused."""

import pytest

from rag import pipeline
from rag.errors import RagError
from rag.index.build import build_index
from rag.index.store import load_index
from rag.ingest.uploads import uploads_dir
from rag.settings import Settings

from conftest import FakeEmbedder


class OtherEmbedder(FakeEmbedder):
    """The same vectors under another model id: an index built by one is foreign to the other."""

    model_id = "fake:other-8"


@pytest.fixture
def project(tmp_path, monkeypatch, seeds_copy):
    """A project folder whose ``index/default`` is the default index, built by the fake embedder from a copy of
    the seeds plus one uploaded article."""
    monkeypatch.setattr(pipeline, "project_root", lambda: tmp_path)
    settings = Settings(index_dir=tmp_path / "index" / "default", seeds_dir=seeds_copy)
    upload = uploads_dir(settings.index_dir) / "nordlicht.txt"
    upload.parent.mkdir(parents=True)
    upload.write_text("Nordlicht Energie investiert 2026 rund 3,4 Milliarden Euro in Windparks.", encoding="utf-8")
    build_index([seeds_copy, upload.parent], settings, FakeEmbedder())
    return settings


def test_the_default_index_is_reembedded_when_another_model_built_it(project, monkeypatch):
    monkeypatch.setattr(pipeline, "make_embedder", lambda settings: OtherEmbedder())
    said = []
    retriever = pipeline.open_retriever(project, log=said.append)
    assert retriever.index.params["embedder"]["id"] == "fake:other-8"
    assert len(retriever.index.articles) == 6 and "nordlicht" in retriever.index.articles  # the upload is kept
    assert [m for m in said if "fake:keywords-8" in m] == [
        "The existing index was built with fake:keywords-8: every passage is embedded again with fake:other-8."]
    said.clear()
    pipeline.open_retriever(project, log=said.append)  # once: the next start loads it as it is
    assert not any("embedded again" in m for m in said)


def test_the_same_model_loads_without_building(project, monkeypatch):
    monkeypatch.setattr(pipeline, "make_embedder", lambda settings: FakeEmbedder())
    builds = []
    monkeypatch.setattr(pipeline, "build_index", lambda *args, **kwargs: builds.append(args))
    retriever = pipeline.open_retriever(project)
    assert not builds and retriever.index.params["embedder"]["id"] == FakeEmbedder.model_id


def test_another_index_built_by_another_model_is_refused_in_one_sentence(tmp_path, monkeypatch, seeds_copy):
    settings = Settings(index_dir=tmp_path / "mine", seeds_dir=seeds_copy)
    build_index(seeds_copy, settings, FakeEmbedder())
    monkeypatch.setattr(pipeline, "make_embedder", lambda settings: OtherEmbedder())
    with pytest.raises(RagError, match="built with the embedding model fake:keywords-8") as err:
        pipeline.open_retriever(settings)
    assert "\n" not in str(err.value)
