"""Word lists read from the user's system (Debian's dictionary and thesaurus), parsed once and then read from a JSON
cache: parsing a 25-30 MB file takes seconds, which every ``rag ask`` would pay again."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable


def parsed_once(source: Path, cache_dir: Path, name: str, parse: Callable[[Iterable[str]], Any]) -> Any | None:
    """``parse`` of the lines of ``source``, cached as JSON in ``cache_dir`` under ``name`` (which says the parser's
    format) with the file's size and time: an edited or replaced file is parsed again and the caches of other
    files or formats of ``name``'s kind (its part before the first "-") are removed. None when ``source`` is
    missing or unreadable. A cache that cannot be written or read is parsed again: it only saves time."""
    try:
        stat = source.stat()
    except OSError:
        return None
    kind = name.split("-", 1)[0]
    cache = cache_dir / f"{name}-{stat.st_size}-{stat.st_mtime_ns}.json"
    try:
        return json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    try:
        with source.open(encoding="utf-8", errors="replace") as handle:
            parsed = parse(handle)
    except OSError:
        return None
    staged = None
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        handle, staged = tempfile.mkstemp(suffix=".tmp", dir=cache_dir)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(parsed, out, ensure_ascii=False)
        os.replace(staged, cache)
        for stale in cache_dir.glob(f"{kind}-*.json"):  # of another file or format: never read again
            if stale != cache:
                stale.unlink(missing_ok=True)
    except OSError:
        if staged:
            Path(staged).unlink(missing_ok=True)
    return parsed
