"""Wiring shared by the CLI, the chat app and the evaluation: settings → embedder → index → retriever, and
uploads → saved files → re-built index (the two steps live in different stages, so they meet here)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from rag.errors import RagError
from rag.index.build import build_index
from rag.index.milvus import open_store
from rag.index.store import Index, load_index, recorded_embedder
from rag.ingest.uploads import MAX_UPLOAD_BYTES, UploadResult, save_uploads, source_folders, undo, uploads_dir
from rag.retrieve.embedding import make_embedder
from rag.retrieve.retrieval import Retriever
from rag.progress import Listener
from rag.settings import Settings, project_root


def is_default_index(settings: Settings) -> bool:
    return Path(settings.index_dir).resolve() == (project_root() / "index" / "default").resolve()


def open_retriever(settings: Settings, log: Callable[[str], None] = lambda m: None, progress: bool = False,
                   build_from: Path | None = None, listener: Listener | None = None) -> Retriever:
    """A warmed-up retriever on ``settings.index_dir``. A missing index is built first: the default one from the
    seeds, any other only when ``build_from`` names its articles folder (the chat passes it; `rag ask` does not
    build behind the user's back). ``listener`` hears the build's progress."""
    embedder = make_embedder(settings)
    path = Path(settings.index_dir)
    if not (path / "params.json").exists() and (build_from is not None or is_default_index(settings)):
        source = Path(build_from or settings.seeds_dir)
        if not source.is_dir():
            raise RagError(f"There is no index at {path} and no articles folder at {source} to build it from.")
        log(f"No index yet: building it from {source} (once) …")
        build_index(source, settings, embedder, progress=progress, log=log, listener=listener)
    elif is_default_index(settings) and recorded_embedder(path) not in (None, embedder.model_id):
        # another model built the default index (an older default, or a changed setting): re-built from the same
        # folders, so an upgrade never leaves the chat refusing to start; any other index is the user's own and
        # is refused with one sentence by ``load_index``
        build_index(_index_folders(settings), settings, embedder, progress=progress, log=log, listener=listener)
    index: Index = load_index(path, embedder.model_id)
    retriever = Retriever(index, embedder, settings, store=open_store(index.params))
    retriever.warm_up()
    return retriever


def _index_folders(settings: Settings) -> list[Path]:
    """The folders the index at ``settings.index_dir`` was built from (its articles' folders and the uploads); a
    damaged index says so in one sentence (``RagError``)."""
    previous = load_index(settings.index_dir, verify=False)
    folders = source_folders((a.source for a in previous.articles.values()), uploads_dir(settings.index_dir),
                             settings.seeds_dir)
    return [folder for folder in folders if folder.is_dir()]


def add_files(files: Sequence[tuple[str, bytes]], index, settings, embedder,
              log: Callable[[str], None] = lambda m: None, max_bytes: int = MAX_UPLOAD_BYTES,
              listener: Listener | None = None) -> UploadResult:
    """Save valid files beside ``index`` and re-index incrementally; the index on disk is only replaced when
    the build succeeds (``build_index`` swaps atomically), and a failed build removes the new files again.
    ``listener`` hears the build's progress."""
    folder = uploads_dir(settings.index_dir)
    folders = source_folders((a.source for a in index.articles.values()), folder, settings.seeds_dir)
    indexed = {doc_id: (a.sha256, str(Path(a.source).parent)) for doc_id, a in index.articles.items()}
    result = save_uploads(files, folder, indexed, max_bytes)
    if not result.saved:
        return result
    try:
        result.report = build_index(folders, settings, embedder, log=log, listener=listener)
    except BaseException:
        undo(result)
        raise
    return result
