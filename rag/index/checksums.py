"""Checksums of an index version's files, recorded in ``params.json`` and checked at every load.

Why sampled: every load checks each file's size; files up to ``FULL_HASH_MAX_BYTES`` are fully hashed, larger
ones through a sampled SHA-256 (head, tail and evenly spaced blocks) so that opening a million-passage index
stays fast; ``verify_files(..., full=True)`` hashes everything.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from rag.errors import RagError

FULL_HASH_MAX_BYTES = 64 << 20
SAMPLE_EDGE_BYTES = 1 << 20
SAMPLE_BLOCKS = 64
SAMPLE_BLOCK_BYTES = 1 << 16


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sampled_sha256(path: Path) -> str:
    """SHA-256 over the size, the first and last MiB and 64 evenly spaced 64 KiB blocks (for big files)."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as handle:
        starts = [0, max(0, size - SAMPLE_EDGE_BYTES)]
        starts += [int(s) for s in np.linspace(0, max(0, size - SAMPLE_BLOCK_BYTES), SAMPLE_BLOCKS)]
        for i, start in enumerate(starts):
            handle.seek(start)
            digest.update(handle.read(SAMPLE_EDGE_BYTES if i < 2 else SAMPLE_BLOCK_BYTES))
    return digest.hexdigest()


def file_entry(path: Path) -> dict:
    """A file's size and SHA-256, and for a big file its sampled SHA-256 too (what ``entry_matches`` checks)."""
    size = path.stat().st_size
    entry = {"sha256": _sha256(path), "bytes": size}
    if size > FULL_HASH_MAX_BYTES:
        entry["sampled_sha256"] = _sampled_sha256(path)
    return entry


def quick_sha256(path: Path) -> str:
    """A file's SHA-256, or for a big file its sampled SHA-256: a key that is cheap to compute at every start."""
    return _sampled_sha256(path) if path.stat().st_size > FULL_HASH_MAX_BYTES else _sha256(path)


def entry_matches(file: Path, expected: dict, full: bool = False) -> bool:
    """Whether ``file`` exists with the size and checksum of its ``file_entry`` (sampled for a big file unless
    ``full``)."""
    try:
        if not file.exists() or file.stat().st_size != expected["bytes"]:
            return False
        if not full and "sampled_sha256" in expected:
            return _sampled_sha256(file) == expected["sampled_sha256"]
        return _sha256(file) == expected["sha256"]
    except (OSError, KeyError, TypeError):
        return False


def _index_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "params.json")


def file_checksums(folder: Path) -> dict:
    """``params.json["files"]``: size and checksum of every file of a version folder but params.json itself."""
    return {str(p.relative_to(folder)): file_entry(p) for p in _index_files(folder)}


def verify_files(path: Path, params: dict, full: bool = False, shown: Path | None = None) -> None:
    """Every file listed in params.json exists in ``path`` with its recorded size and checksum.

    Files above ``FULL_HASH_MAX_BYTES`` are checked through their sampled checksum unless ``full``; messages
    name ``shown`` (the index as the user named it) when given.
    """
    for name, expected in params["files"].items():
        if not entry_matches(path / name, expected, full):
            raise RagError(f"The index at {shown or path} is damaged ({name} is missing or altered); rebuild it with `rag index`.")
