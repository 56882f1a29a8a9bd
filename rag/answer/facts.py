"""The time a sentence of an article speaks about: named years and quarters, and relative phrases ("im vergangenen
Quartal", "für das laufende Jahr") resolved against the article's publication date, with each figure tied to the time
named in its own clause. Used by the answer selector (``rag.answer.selection``) to hold a sentence's time against the
asked one, and by the answerer to keep another year's figures out of an answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Mapping

from rag.ingest.sentences import sentence_spans
from rag.lang.de import (CLAUSE_END, FIGURE, LAST_QUARTER, LAST_YEAR, MEASURE_UNITS, NAMED_QUARTERS, NEXT_QUARTER,
                         NEXT_YEAR, NUMBER_WORDS, QUARTER, QUARTER_WORD, QUARTER_WORDS, SCALES, THIS_QUARTER,
                         THIS_YEAR, YEAR_BEFORE, YEAR_EDGE, YEAR_EDGE_QUARTERS, YEARS_AGO)

# Number words that count as figures ("sechs Milliarden", "zehnmal"); "ein/eine" only before a scale word.
_NUMBER_WORDS = (*(word for word, value in NUMBER_WORDS.items() if value >= 2), "doppelt")
NUMBER = re.compile(FIGURE.pattern + r"|\b(?:" + "|".join(_NUMBER_WORDS) + r")\b|"
                    r"\bein(?:e|er)?(?= (?:Milliarde|Million|Billion))", re.IGNORECASE)
# A year of any century from 1000 ("1862" is a year too), but not a count ("1500 Menschen", "2000 Dollar").
_COUNTED = "|".join(sorted((w for w in {*MEASURE_UNITS, *SCALES} if w[:1].isalpha() and not w.startswith("jahr")),
                           key=len, reverse=True))
YEAR = re.compile(r"(?<![\d.,])(1\d{3}|20\d{2})(?![\d.,]\d)(?!\s*(?:%|(?:" + _COUNTED + r")\b))", re.IGNORECASE)


def date_parts(value: str | None) -> tuple[int, int] | None:
    if not value:
        return None
    parts = value.split("-")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 6
    except ValueError:
        return None


def quarter_periods(text: str, default_year: int | None) -> set[str]:
    """The quarters ``text`` names ("2024-q3"); a quarter without a year is of ``default_year`` (when given). In a
    text that speaks of a quarter, the edge of a year it numbers no quarter of names one ("Quartalsgewinn von Ende
    2024 bis Ende 2025": the fourth quarters)."""
    periods = set()
    for match in QUARTER.finditer(text):
        number, year = _quarter_of(match)
        year = year or default_year
        if year:
            periods.add(f"{year}-q{number}")
    if QUARTER_WORD.search(text):
        numbered = {p[:4] for p in periods}
        periods |= {f"{m.group(2)}-q{YEAR_EDGE_QUARTERS[m.group(1).lower()]}" for m in YEAR_EDGE.finditer(text)
                    if m.group(2) not in numbered}
    return periods


@dataclass(frozen=True)
class TimeMention:
    """A year (and maybe a quarter) a sentence names, at ``[start, end)`` in the sentence. ``kind``: "explicit"
    ("2025", "im dritten Quartal 2024"), "relative" ("dieses Jahr", "im vergangenen Quartal", read against the
    article's publication date) or "baseline" ("vor einem Jahr", "gegenüber dem Vorjahr": a comparison figure)."""

    start: int
    end: int
    year: int
    quarter: int | None
    kind: str


def time_mentions(text: str, published: str | None) -> list[TimeMention]:
    """Every time a sentence names, in text order. Relative phrases need the publication date (``YYYY-MM[-DD]``):
    without one they are left out rather than guessed; explicit years and quarters are read anyway. A quarter
    without a year is the latest such quarter up to the publication date ("im vierten Quartal" in January 2026 →
    2025)."""
    mentions: list[TimeMention] = []
    explicit = [int(y) for y in YEAR.findall(text)]
    when = date_parts(published)
    for match in YEAR.finditer(text):
        mentions.append(TimeMention(match.start(1), match.end(1), int(match.group(1)), None, "explicit"))
    for match in QUARTER.finditer(text):
        number, year = _quarter_of(match)
        kind = "explicit" if year is not None or len(set(explicit)) == 1 else "relative"
        if year is None and len(set(explicit)) == 1:
            year = explicit[0]
        elif year is None and when:
            year = when[0] if number <= (when[1] - 1) // 3 + 1 else when[0] - 1
        if year is not None:
            mentions = [m for m in mentions if not (match.start() <= m.start < match.end())]
            mentions.append(TimeMention(match.start(), match.end(), year, number, kind))
    if when:
        year, quarter = when[0], (when[1] - 1) // 3 + 1
        last = (year, quarter - 1) if quarter > 1 else (year - 1, 4)
        following = (year, quarter + 1) if quarter < 4 else (year + 1, 1)
        for pattern, (y, q), kind in ((THIS_YEAR, (year, None), "relative"), (LAST_YEAR, (year - 1, None), "relative"),
                                      (NEXT_YEAR, (year + 1, None), "relative"), (LAST_QUARTER, last, "relative"),
                                      (THIS_QUARTER, (year, quarter), "relative"),
                                      (NEXT_QUARTER, following, "relative")):
            mentions += [TimeMention(m.start(), m.end(), y, q, kind) for m in pattern.finditer(text)]
        for match in YEARS_AGO.finditer(text):
            count = match.group(2)
            step = int(count) if count.isdigit() else NUMBER_WORDS[count.lower()]
            mentions.append(TimeMention(match.start(), match.end(),
                                        year - step if match.group(1).lower() == "vor" else year + step, None,
                                        "relative"))
    # A comparison is a year before the time the sentence itself speaks about (its one named period, else the
    # publication year): "Im vierten Quartal 2025 … nach 40,1 Milliarden vor einem Jahr" → the fourth quarter of 2024.
    periods = {(m.year, m.quarter) for m in mentions}
    reference = next(iter(periods)) if len(periods) == 1 else (when[0], None) if when else None
    if reference:
        mentions += [TimeMention(m.start(), m.end(), reference[0] - 1, reference[1], "baseline")
                     for m in YEAR_BEFORE.finditer(text)]
    return sorted(mentions, key=lambda m: (m.start, m.end))


def _quarter_of(match: re.Match) -> tuple[int, int | None]:
    """(quarter, year or None) of a ``QUARTER`` match."""
    if match.group(1):
        number, year = QUARTER_WORDS[match.group(1).lower()], match.group(2)
    elif match.group(3):
        number, year = int(match.group(3)), match.group(4)
    elif match.group(5):
        number, year = NAMED_QUARTERS[match.group(5).lower()], match.group(6)
    else:  # "im letzten Quartal 2025"
        number, year = 4, match.group(7)
    return number, int(year) if year else None


def sentence_years(text: str, published: str | None) -> frozenset[int]:
    """The years a sentence speaks about: named ones and relative ones resolved by the publication date; a
    comparison with the year before ("nach 3,74 Milliarden vor einem Jahr") is not what it speaks about."""
    return frozenset(m.year for m in time_mentions(text, published) if m.kind != "baseline")


@lru_cache(maxsize=8192)  # the answerer asks it of the same likely quotes again and again (about 13 per question)
def figure_years(text: str, published: str | None) -> Mapping[str, frozenset[int]]:
    """For each figure of a sentence (as written, e.g. "37"), the year(s) it is stated for: the time named nearest
    to it within its own clause, else the sentence's years. "Für dieses Jahr rechnet Meta mit Kosten zwischen 37 und
    40 Milliarden Dollar – und … dass sie 2025 …" in an October 2024 article: 37 and 40 are 2024's figures."""
    mentions = time_mentions(text, published)
    own = frozenset(m.year for m in mentions if m.kind != "baseline")
    # clauses end at clause punctuation and at sentence ends: in "2019 verkaufte Nordlicht 300 Boote. 2021 …" (a
    # quote of two sentences) 300 is 2019's, though "2021" stands nearer to it
    cuts = sorted({0, *(m.end() for m in CLAUSE_END.finditer(text)), *(end for _, end in sentence_spans(text)),
                   len(text) + 1})
    figures = [f for f in NUMBER.finditer(text) if not any(m.start <= f.start() < m.end for m in mentions)]
    # a comparison with the year before dates the one figure it follows ("4,9 Milliarden nach 3,74 Milliarden vor
    # einem Jahr": 3,74 is the year before's, not 4,9)
    compared = {id(m): min(figures, key=lambda f: _gap(m, f)).start() for m in mentions if m.kind == "baseline" and figures}
    result: dict[str, set[int]] = {}
    for match in figures:
        clause = next(i for i in range(len(cuts) - 1) if cuts[i] <= match.start() < cuts[i + 1])
        inside = [m for m in mentions if cuts[clause] <= m.start < cuts[clause + 1]
                  and (m.kind != "baseline" or compared[id(m)] == match.start())]
        if inside:
            distance = min(_gap(m, match) for m in inside)
            years = {m.year for m in inside if _gap(m, match) == distance}
        else:
            years = set(own)
        result.setdefault(match.group(0), set()).update(years)
    return MappingProxyType({figure: frozenset(years) for figure, years in result.items()})


def _gap(mention: TimeMention, figure: re.Match) -> int:
    return max(mention.start - figure.end(), figure.start() - mention.end, 0)


def sentence_time(text: str, published: str | None,
                  baseline: bool = False) -> tuple[frozenset[int], frozenset[str]]:
    """The years and quarters ("2024-q3") a sentence speaks about, relative ones resolved by the publication date; a
    comparison with the year before is not what it speaks about. ``baseline``: the times of its comparisons alone
    ("… auf sechs Milliarden von fünf Milliarden ein Jahr zuvor" in January 2026: the fourth quarter of 2024)."""
    mentions = [m for m in time_mentions(text, published) if (m.kind == "baseline") == baseline]
    return frozenset(m.year for m in mentions), frozenset(f"{m.year}-q{m.quarter}" for m in mentions if m.quarter)
