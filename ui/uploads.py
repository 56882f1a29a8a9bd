"""The chat's uploads: files sent through the page are queued, saved, indexed in the background, and the engine is
handed the new index.

Why apart from the engine (``ui.chat``): answering must go on while an upload is indexed, so uploads have their own
state: the queue (``rag.ingest.uploads.UploadQueue``: smallest files first; files a killed app had accepted are
indexed at the next start), a second embedding model (the engine's one is busy with questions), and a lock so that
one re-index runs at a time. The new index is swapped in by the engine with one assignment; questions already
running finish on the index they started with.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Callable, Sequence

from rag.errors import RagError
from rag.ingest.uploads import ARTICLE_SUFFIXES, MAX_UPLOAD_BYTES, UploadQueue, UploadResult, Uploads, uploads_dir
from rag.pipeline import add_files

log = logging.getLogger("ui.chat")


class ChatUploads:
    """The uploads of one chat engine (``ui.chat.ChatEngine``: its settings, ``say``, ``retriever``, ``wait``,
    ``reopen`` and ``install``); ``failed_message`` turns an indexing error into the sentence the page shows."""

    def __init__(self, engine, failed_message: Callable[[BaseException], str]) -> None:
        self._engine = engine
        self._failed_message = failed_message
        self._lock = threading.Lock()  # one re-index at a time
        self._embedder = None          # a second model instance for re-indexing while questions run
        self.queue = UploadQueue(uploads_dir(engine.settings.index_dir), self._add, self._failed)

    def add_pending(self, retriever):
        """Uploads saved earlier but missing from the index (e.g. after a plain `rag index`) are indexed again."""
        engine = self._engine
        folder = uploads_dir(engine.settings.index_dir)
        if not folder.is_dir():
            return retriever
        files = [p for p in folder.iterdir() if p.suffix.lower() in ARTICLE_SUFFIXES and p.is_file()]
        indexed = {a.doc_id for a in retriever.index.articles.values()
                   if Path(a.source).parent.resolve() == folder.resolve()}
        if not files or {p.stem for p in files} <= indexed:
            return retriever
        from rag.index.build import build_index
        from rag.ingest.uploads import source_folders

        folders = source_folders((a.source for a in retriever.index.articles.values()), folder, engine.settings.seeds_dir)
        engine.say(f"Adding {len(files)} uploaded article(s) from {folder} to the index …")
        build_index(folders, engine.settings, retriever.embedder, log=engine.say)
        return engine.reopen(retriever)

    def resume(self) -> None:
        """Index the files a killed app had accepted (once the engine has loaded)."""
        self.queue.resume()

    def submit(self, paths: Sequence[str | Path], max_bytes: int = MAX_UPLOAD_BYTES) -> Uploads:
        """Queue uploaded files (paths of temporary copies, named like the originals) for background indexing."""
        self._engine.wait()
        files = []
        for path in paths:
            path = Path(path)
            with path.open("rb") as handle:
                files.append((path.name, handle.read(max_bytes + 1)))
        return Uploads(self.queue.submit(files))

    def _failed(self, err: BaseException) -> str:
        if not isinstance(err, RagError):
            log.error("indexing an upload failed", exc_info=err)
        return self._failed_message(err)

    def _add(self, files: list[tuple[str, bytes]], listener=None, max_bytes: int = MAX_UPLOAD_BYTES) -> UploadResult:
        """Save files into the uploads folder, re-index, and swap in the new index (the queue's worker;
        ``listener`` hears the build's steps)."""
        engine = self._engine
        with self._lock:
            retriever = engine.retriever
            if self._embedder is None:
                from rag.retrieve.embedding import make_embedder

                self._embedder = make_embedder(engine.settings)
            result = add_files(files, retriever.index, engine.settings, self._embedder, log=engine.say,
                               max_bytes=max_bytes, listener=listener)
            if result.saved:
                engine.install(engine.reopen(retriever))
        return result
