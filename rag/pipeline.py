"""Wiring shared by the CLI, the chat app and the evaluation: settings → embedder → index → retriever."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from rag.embedding import make_embedder
from rag.errors import RagError
from rag.index import Index, build_index, load_index
from rag.retrieval import Retriever
from rag.settings import Settings, project_root


def is_default_index(settings: Settings) -> bool:
    return Path(settings.index_dir).resolve() == (project_root() / "index" / "default").resolve()


def open_retriever(settings: Settings, log: Callable[[str], None] = lambda m: None, progress: bool = False) -> Retriever:
    """A warmed-up retriever on ``settings.index_dir``; the default index is built from the seeds when absent."""
    embedder = make_embedder(settings)
    path = Path(settings.index_dir)
    if not (path / "params.json").exists() and is_default_index(settings):
        if not Path(settings.seeds_dir).is_dir():
            raise RagError(f"There is no index at {path} and no seeds folder at {settings.seeds_dir} to build it from.")
        log(f"No index yet: building it from {settings.seeds_dir} (once) …")
        build_index(Path(settings.seeds_dir), settings, embedder, progress=progress, log=log)
    index: Index = load_index(path, embedder.model_id)
    retriever = Retriever(index, embedder, settings)
    retriever.warm_up()
    return retriever
