"""One writer per index folder, across processes: an advisory lock file beside the index.

Why: a build reads the existing index (chunk hashes, token tables, vectors) to re-use it and then replaces it.
Two builds that overlap would each read an index the other is about to replace and could write passages under
the wrong article. The lock (``<parent>/.<name>.lock``, an ``flock`` through the ``filelock`` package, released by
the kernel when a process dies) is held for the whole build, so builds run one after the other. Readers take no
lock: they never see a half-written index (see ``rag.index.versions.swap_in``).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from filelock import FileLock, Timeout

from rag.errors import RagError


class IndexBusy(RagError):
    """Another process is writing the index and the caller chose not to wait."""


def lock_file(index_dir: Path) -> Path:
    index_dir = Path(index_dir)
    return index_dir.parent / f".{index_dir.name}.lock"


@contextmanager
def writer_lock(index_dir: Path, wait: bool = True, say: Callable[[str], None] = lambda m: None) -> Iterator[None]:
    """Hold the index's writer lock; wait for another writer (saying so once) or, without ``wait``, raise
    ``IndexBusy``."""
    index_dir = Path(index_dir)
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_file(index_dir))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if not wait:
            raise IndexBusy(f"Ein anderer Indexlauf schreibt gerade in {index_dir}; ohne --no-wait wird gewartet, "
                            f"bis er fertig ist.") from None
        say(f"Ein anderer Indexlauf schreibt gerade in {index_dir} – warte, bis er fertig ist …")
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
