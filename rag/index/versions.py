"""Index versions: ``index/<name>`` is a link to one complete version folder, replaced in one atomic step.

Why: a reader must never see a half-written index. ``index/<name>`` is a symbolic link to a hidden sibling
folder ``.<name>.v-<time>`` holding one complete version. A build (one at a time: ``rag.index.lock``) fills a
new version folder, fsyncs it, and replaces the link with ``os.replace`` in one atomic step; then the replaced
version is deleted. So a reader never moves or renames anything and always opens one complete version; a reader
that was still opening the old version when it was deleted opens the new one (``rag.index.store.load_index``
retries), and an index already loaded keeps working (its files are memory-mapped or in memory). An interrupted
build leaves the previous version in place; its unfinished folder is removed by the next build. A plain folder
(an index written before versions) still loads and becomes a version at the next build.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
from pathlib import Path
from typing import Callable

from rag.errors import RagError
from rag.index.checksums import file_checksums

DISK_FULL_BYTES = 1 << 20  # an OSError while writing with less free space than this is a full disk


def versions(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f".{path.name}.v-*"))


def current_folder(path: Path) -> Path | None:
    """The folder holding the index's files now: the link's target, a plain (pre-version) folder, or None."""
    path = Path(path)
    if path.is_symlink():
        target = path.parent / os.readlink(path)
        return target if target.is_dir() else None
    return path if path.is_dir() else None


def _remove_stale(path: Path, keep: Path | None) -> None:
    """Versions no link points to (a killed build's) and the leftovers of the old rename swap."""
    stale = [v for v in versions(path) if keep is None or v.name != keep.name]
    stale += list(path.parent.glob(f".{path.name}.tmp-*")) + list(path.parent.glob(f".{path.name}.old"))
    for folder in stale:
        shutil.rmtree(folder, ignore_errors=True)


def _point(path: Path, version: Path) -> None:
    """Make ``path`` a link to ``version`` in one atomic ``os.replace`` (a plain folder becomes a version first)."""
    link = path.with_name(f".{path.name}.link-{os.getpid()}")
    link.unlink(missing_ok=True)
    os.symlink(version.name, link)
    plain = path.with_name(f".{path.name}.v-0-plain")
    if path.is_dir() and not path.is_symlink():
        path.rename(plain)  # readers retry during this one step
    try:
        os.replace(link, path)
    except OSError:
        if plain.is_dir() and not path.exists():
            plain.rename(path)  # the old index stays where it was
        link.unlink(missing_ok=True)
        raise


def remove_index(path: Path) -> None:
    """Delete an index with all its versions (``shutil.rmtree`` refuses a link)."""
    path = Path(path)
    if path.is_symlink():
        path.unlink()
    else:
        shutil.rmtree(path, ignore_errors=True)
    _remove_stale(path, None)


def _nearly_full(folder: Path) -> bool:
    """Some writers (numpy's ``tofile``) report a full disk as a short write without ``ENOSPC``."""
    try:
        return shutil.disk_usage(folder).free < DISK_FULL_BYTES
    except OSError:
        return False


class DiskFull(RagError):
    """No space left while writing a new index version; the previous version is untouched."""


def swap_in(path: Path, params: dict, fill: Callable[[Path], None]) -> dict:
    """Fill a new version folder, write params.json with checksums, fsync, and point ``path`` at it.

    The caller holds the writer lock (``rag.index.lock``). A full disk is one ``DiskFull`` sentence naming the
    folder; the previous version stays in place either way.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    old = current_folder(path)
    _remove_stale(path, old if old is not None and old != path else None)
    version = path.with_name(f".{path.name}.v-{time.time_ns()}")
    try:
        version.mkdir()
        fill(version)
        params = dict(params, files=file_checksums(version))
        (version / "params.json").write_text(json.dumps(params, indent=2, ensure_ascii=False), encoding="utf-8")
        for p in version.rglob("*"):
            if p.is_file():
                with p.open("rb") as handle:
                    os.fsync(handle.fileno())
        _point(path, version)
    except BaseException as err:
        full = isinstance(err, OSError) and (err.errno in (errno.ENOSPC, errno.EDQUOT) or _nearly_full(path.parent))
        shutil.rmtree(version, ignore_errors=True)
        if full:
            raise DiskFull(f"The disk holding {path.parent} is full, so the new index could not be written; the "
                           f"previous index is unchanged. Free some space and run `rag index` again.") from None
        raise
    _remove_stale(path, version)  # the replaced version (or the plain folder it was)
    return params
