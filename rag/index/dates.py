"""Publication-date ranges (``--since``/``--until``, the chat's date range) for both index backends.

Why numbers: Milvus filters an INT64 ``YYYYMMDD`` field with an inverted index, and the local backend compares
the same numbers, so both select the same articles. A date known to the month (``2025-07``) or year counts from
its first day; an article without a known date is left out as soon as a bound is set.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from rag.errors import RagError


def date_number(date: str | None) -> int:
    """``2026-01-28`` → 20260128; a month (``2025-07``) or a year counts from its first day; unknown → 0."""
    if not date:
        return 0
    parts = (date.split("-") + ["01", "01"])[:3]
    try:
        year, month, day = (int(p) for p in parts)
    except ValueError:
        return 0
    return year * 10_000 + max(month, 1) * 100 + max(day, 1)


def _bound(value: str | None, flag: str) -> int | None:
    if value is None or not value.strip():
        return None
    try:
        day = dt.date.fromisoformat(value.strip())
    except ValueError:
        raise RagError(f"{flag} {value!r} is not a date in the form YYYY-MM-DD.") from None
    return day.year * 10_000 + day.month * 100 + day.day


@dataclass(frozen=True)
class DateRange:
    """Inclusive bounds as ``YYYYMMDD`` numbers (None: open)."""

    since: int | None = None
    until: int | None = None

    @classmethod
    def parse(cls, since: str | None, until: str | None) -> "DateRange | None":
        """From ISO ``YYYY-MM-DD`` strings; None when neither is given; a bad or reversed range is a ``RagError``."""
        low, high = _bound(since, "--since"), _bound(until, "--until")
        if low is None and high is None:
            return None
        if low is not None and high is not None and low > high:
            raise RagError(f"--since {since} is after --until {until}.")
        return cls(low, high)

    def allows(self, date: str | None) -> bool:
        number = date_number(date)
        return number > 0 and (self.since is None or number >= self.since) and (self.until is None or number <= self.until)

    def milvus_filter(self) -> str:
        """The same range as a Milvus filter expression on the ``date`` field."""
        terms = [f"date >= {self.since}" if self.since else "date > 0"]
        if self.until:
            terms.append(f"date <= {self.until}")
        return " and ".join(terms)
