"""Progress of long steps (embedding while indexing, answering a question file) for three audiences at once.

Why one helper: a person at a terminal wants a bar; a log file or a pipe (CI, ``nohup``) gets no bar from tqdm and
would see nothing for minutes, so it gets one plain line every ``every`` seconds instead; and the chat app shows the
first index build in the browser, so it registers a ``listener`` that hears every step.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")

Listener = Callable[[str, int, int], None]
"""``listener(stage, done, total)``: called after every step (the stage is the unit, e.g. ``"passage"``)."""

EVERY_SECONDS = 10.0

# An index build's steps as shares of its whole time (measured on the seeds: sentence vectors take most of it).
BUILD_SHARES = {"article": (0, 5), "passage": (5, 35), "sentence": (35, 95)}


def build_percent(stage: str, done: int, total: int) -> int | None:
    """How far an index build is (0–95; loading the new index is the rest), from one step its listener heard;
    None for a stage that is not part of the estimate. Shared by the chat's first start and its upload queue, so
    both bars move alike."""
    if stage not in BUILD_SHARES:
        return None
    low, high = BUILD_SHARES[stage]
    return int(low + (high - low) * (done / total if total else 1.0))


class Progress:
    """A counter with a terminal bar (tqdm), periodic log lines otherwise, and an optional listener."""

    def __init__(self, total: int, desc: str, unit: str, terminal: bool = False,
                 log: Callable[[str], None] | None = None, listener: Listener | None = None,
                 every: float = EVERY_SECONDS) -> None:
        from tqdm import tqdm

        self.total, self.desc, self.unit, self.done = total, desc, unit, 0
        self._bar = tqdm(total=total, desc=desc, unit=unit) if terminal else None
        self._log = None if terminal else log
        self._listener = listener
        self._every = every
        self._started = self._last = time.monotonic()
        self._reported = False
        if listener is not None:
            listener(unit, 0, total)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        if self._listener is not None:
            self._listener(self.unit, self.done, self.total)
        now = time.monotonic()
        if self._log is not None and now - self._last >= self._every and self.done < self.total:
            self._last = now
            self._reported = True
            self._log(self.line())

    def each(self, items: Iterable[T]) -> Iterator[T]:
        """The items, counting each one as done when the loop comes back for the next."""
        for item in items:
            yield item
            self.update()

    def line(self) -> str:
        """``Embedding passages: 120/310 (39 %), 12 s`` – what a log reader needs to judge how long is left."""
        percent = f" ({100 * self.done // self.total} %)" if self.total else ""
        return f"{self.desc}: {self.done}/{self.total}{percent}, {time.monotonic() - self._started:.0f} s"

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        if self._log is not None and self._reported:  # a log that saw progress also sees the end
            self._log(self.line())

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
