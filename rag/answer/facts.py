"""What a sentence of an article says: its stems, figures and units, names, cues for a person, a date or a place,
and the years and quarters it speaks about, with relative phrases ("im vergangenen Quartal") resolved against the
article's date. Computed once per sentence and cached by the answerer (``rag.answer.answering``), so that scoring every
sentence of the best passages against a question stays cheap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Sequence

from rag.lang.de import MEASURE_UNITS, MONTH_NUMBERS, NUMBER_WORDS, SCALES, WEEKDAYS, tokenize
from rag.schema import Article

# Number words that count as figures ("sechs Milliarden", "zehnmal"); "ein/eine" only before a scale word.
_NUMBER_WORDS = (*(word for word, value in NUMBER_WORDS.items() if value >= 2), "doppelt")
NUMBER = re.compile(r"(?<![\w.,])\d+(?:[.,]\d+)*(?![\w])|\b(?:" + "|".join(_NUMBER_WORDS) + r")\b|"
                    r"\bein(?:e|er)?(?= (?:Milliarde|Million|Billion))", re.IGNORECASE)
_UNIT = re.compile(r"\b(?:Dollar|US-Dollar|Euro|Prozent|Milliarden?|Millionen?|Billionen?|Mrd|Mio|Nutzer|Menschen|"
                   r"Cent|Platz|mal|percent|billion|million)\b|%|\d-mal|zehnmal", re.IGNORECASE)
# A year of any century from 1000 ("1862" is a year too), but not a count ("1500 Menschen", "2000 Dollar").
_COUNTED = "|".join(sorted((w for w in {*MEASURE_UNITS, *SCALES} if w[:1].isalpha() and not w.startswith("jahr")),
                           key=len, reverse=True))
YEAR = re.compile(r"(?<![\d.,])(1\d{3}|20\d{2})(?![\d.,]\d)(?!\s*(?:%|(?:" + _COUNTED + r")\b))", re.IGNORECASE)
_QUARTER_WORDS = {"ersten": 1, "zweiten": 2, "dritten": 3, "vierten": 4, "first": 1, "second": 2, "third": 3,
                  "fourth": 4, "1.": 1, "2.": 2, "3.": 3, "4.": 4}
QUARTER = re.compile(r"\b(ersten|zweiten|dritten|vierten|first|second|third|fourth|[1-4]\.)\s+(?:Quartal|quarter)"
                     r"(?:s)?(?:\s+(?:of\s+)?(\d{4}))?|\bQ([1-4])(?:[ /]+(\d{4}))?|\b(Schlussquartal|Jahresendquartal)"
                     r"(?:\s+(\d{4}))?", re.IGNORECASE)
THIS_YEAR = re.compile(r"\b(?:laufenden?|diese[mns]?|this|current)\s+(?:Geschäfts|Kalender)?(?:jahr|year)s?\b|"
                       r"\bheuer\b", re.IGNORECASE)
_LAST_YEAR = re.compile(r"\b(?:vergangene[mns]?|letzte[mns]?|abgelaufene[mns]?|vorige[mns]?)\s+(?:Geschäfts)?Jahr\b|"
                        r"\b(?:im|das) Vorjahr\b(?! (?:gegenüber|verglichen))|\blast year\b", re.IGNORECASE)
# "… nach 3,74 Milliarden vor einem Jahr": a comparison with the year before, not the time the sentence is about.
BASELINE = re.compile(r"\bvor einem Jahr\b|\bein Jahr (?:zuvor|davor|früher)\b|\ba year (?:earlier|before|ago)\b|"
                      r"\bVorjahres(?:zeitraum|quartal|wert|monat)\w*|\b(?:gegenüber dem|im Vergleich zum|verglichen "
                      r"mit dem) Vorjahr\b", re.IGNORECASE)
_NEXT_YEAR = re.compile(r"\b(?:nächste[mns]?|kommende[mns]?|folgende[mns]?)\s+(?:Geschäfts)?Jahr\b|\bnext year\b",
                        re.IGNORECASE)
_YEARS_AGO = re.compile(r"\b(vor|in)\s+(\d{1,2}|zwei|drei|vier|fünf|sechs|sieben|acht|neun|zehn)\s+Jahren\b",
                        re.IGNORECASE)
_LAST_QUARTER = re.compile(r"\b(?:vergangenen|abgelaufenen|letzten|jüngsten|zurückliegenden|vorigen)\s+Quartal",
                           re.IGNORECASE)
_THIS_QUARTER = re.compile(r"\b(?:laufenden?|diese[mn]|aktuellen)\s+Quartal", re.IGNORECASE)
_NEXT_QUARTER = re.compile(r"\b(?:nächsten|kommenden|folgenden)\s+Quartal", re.IGNORECASE)
# Where a clause ends inside a sentence: a dash, a semicolon or colon, or a comma before a conjunction. A figure
# belongs to the time named in its own clause ("Für dieses Jahr … 37 bis 40 Milliarden – und … dass sie 2025 …").
_CLAUSE_END = re.compile(r"\s[–—-]\s|;|:\s|,\s+(?=(?:und|aber|doch|während|dass|wobei|nachdem|weil|wenn|als|"
                         r"sondern|so dass|sodass)\b)")
_ROLE = r"(?i:\w*chef|\w*chefin|\w*boss|gründer|mitgründer|\w*analyst|\w*manager|präsident|leiter|ceo|cfo|head)"
# A person: first and last name; a surname after a role ("Meta-Chef Zuckerberg"); a name after a verb of saying.
_NAME = re.compile(r"(?<=\s)(?!" + _ROLE + r"\b)([A-ZÄÖÜ][a-zäöüß]+\s+(?:[A-Z][a-z]?[A-Za-zäöüß]+|Li))\b|"
                   r"\b" + _ROLE + r"\s+([A-ZÄÖÜ][\wäöüß]+)|"
                   r"\b(?:sagte|erklärte|konstatiert|meinte|betonte|argumentiert)(?:\s+auch)?\s+"
                   r"([A-ZÄÖÜ]\w+(?:\s+[A-ZÄÖÜ]\w+)?)")
_PERSON_CUE = re.compile(r"(?:chef|chefin|boss|gründer|CEO|Head|Analyst|analyst|manager|Präsident|sagte|erklärte|"
                         r"betonte|meinte|schätzte|argumentiert|konstatiert|zitiert|überzeugt|leitet|gehört)",
                         re.IGNORECASE)
_DATE_CUE = re.compile(r"\b(?:(?:" + "|".join(MONTH_NUMBERS) + r")\b|(?:" + "|".join(WEEKDAYS) + r")|Ende des Jahres\b|Jahresende\b|seit\b|bis Ende\b|Anfang\b|gestern\b|heute\b)"
                       r"|\b\d{1,2}\.\d{1,2}\.\d{4}\b|(?<!\d)(?:19|20)\d{2}(?!\d)", re.IGNORECASE)
# A change rather than a level: a percentage, "Plus"/"Minus", "von … auf …" ("Das entspricht einem Plus von 175 Prozent").
_CHANGE_CUE = re.compile(r"\b(?:Prozent|Prozentpunkte|Plus|Minus|Anstieg|Zuwachs|verdoppelt\w*|verdreifacht\w*)\b|%|"
                         r"\bvon\b[^.;]{1,60}?\bauf\b", re.IGNORECASE)
_PLACE_CUE = re.compile(r"\b(?:in|aus|nach)\s+(?:der\s+|dem\s+)?[A-ZÄÖÜ][a-zäöüß]+")


def date_parts(value: str | None) -> tuple[int, int] | None:
    if not value:
        return None
    parts = value.split("-")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 6
    except ValueError:
        return None


def date_phrases(text: str) -> list[str]:
    """The date words of a text ("bis Ende", "Januar", "Montag"), without the figures (checked as figures)."""
    return [m.group(0) for m in _DATE_CUE.finditer(text) if not any(ch.isdigit() for ch in m.group(0))]


def reporting_months(periods: frozenset[str] | set[str]) -> frozenset[str]:
    """The publication months ("2026-01") that fit a question's periods: the months asked for ("month:2025-07"),
    and for a quarter the two months after it, when its results are reported ("2025-q4" → January and February
    2026)."""
    months = {p.split(":", 1)[1] for p in periods if p.startswith("month:")}
    for period in periods:
        if "-q" in period:
            year, quarter = int(period[:4]), int(period[-1])
            for step in (1, 2):
                month = 3 * quarter + step
                months.add(f"{year + (month - 1) // 12}-{(month - 1) % 12 + 1:02d}")
    return frozenset(months)


def quarter_periods(text: str, default_year: int | None) -> set[str]:
    periods = set()
    for match in QUARTER.finditer(text):
        number, year = _quarter_of(match)
        year = year or default_year
        if year:
            periods.add(f"{year}-q{number}")
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
        for pattern, (y, q), kind in ((THIS_YEAR, (year, None), "relative"), (_LAST_YEAR, (year - 1, None), "relative"),
                                      (_NEXT_YEAR, (year + 1, None), "relative"), (_LAST_QUARTER, last, "relative"),
                                      (_THIS_QUARTER, (year, quarter), "relative"),
                                      (_NEXT_QUARTER, following, "relative")):
            mentions += [TimeMention(m.start(), m.end(), y, q, kind) for m in pattern.finditer(text)]
        for match in _YEARS_AGO.finditer(text):
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
                     for m in BASELINE.finditer(text)]
    return sorted(mentions, key=lambda m: (m.start, m.end))


def _quarter_of(match: re.Match) -> tuple[int, int | None]:
    """(quarter, year or None) of a ``QUARTER`` match."""
    if match.group(1):
        number, year = _QUARTER_WORDS[match.group(1).lower()], match.group(2)
    elif match.group(3):
        number, year = int(match.group(3)), match.group(4)
    else:
        number, year = 4, match.group(6)
    return number, int(year) if year else None


def sentence_years(text: str, published: str | None) -> frozenset[int]:
    """The years a sentence speaks about: named ones and relative ones resolved by the publication date; a
    comparison with the year before ("nach 3,74 Milliarden vor einem Jahr") is not what it speaks about."""
    return frozenset(m.year for m in time_mentions(text, published) if m.kind != "baseline")


def figure_years(text: str, published: str | None) -> dict[str, frozenset[int]]:
    """For each figure of a sentence (as written, e.g. "37"), the year(s) it is stated for: the time named nearest
    to it within its own clause, else the sentence's years. "Für dieses Jahr rechnet Meta mit Kosten zwischen 37 und
    40 Milliarden Dollar – und … dass sie 2025 …" in an October 2024 article: 37 and 40 are 2024's figures."""
    mentions = time_mentions(text, published)
    own = frozenset(m.year for m in mentions if m.kind != "baseline")
    cuts = [0, *(m.end() for m in _CLAUSE_END.finditer(text)), len(text) + 1]
    result: dict[str, set[int]] = {}
    for match in NUMBER.finditer(text):
        if any(m.start <= match.start() < m.end for m in mentions):
            continue
        clause = next(i for i in range(len(cuts) - 1) if cuts[i] <= match.start() < cuts[i + 1])
        inside = [m for m in mentions if cuts[clause] <= m.start < cuts[clause + 1]]
        if inside:
            distance = min(_gap(m, match) for m in inside)
            years = {m.year for m in inside if _gap(m, match) == distance}
        else:
            years = set(own)
        result.setdefault(match.group(0), set()).update(years)
    return {figure: frozenset(years) for figure, years in result.items()}


def _gap(mention: TimeMention, figure: re.Match) -> int:
    return max(mention.start - figure.end(), figure.start() - mention.end, 0)


@dataclass(frozen=True)
class SentenceFacts:
    """What one sentence of an article offers, computed once and cached by the answerer."""

    doc_id: str
    start: int
    end: int
    text: str
    tokens: frozenset[str]
    numbers: frozenset[str]
    has_unit: bool
    years: frozenset[int]
    periods: frozenset[str]
    names: tuple[tuple[str, int], ...]
    person_cue: bool
    date_cue: bool
    place_cue: bool
    heading: bool
    question: bool
    baseline: bool = False
    change_cue: bool = False
    context: frozenset[str] = frozenset()
    time_source: str = "own"
    position: int = 0
    paragraph: int = 0
    # the years its figures are stated for (``figure_years``): "Für dieses Jahr … 37 bis 40 Milliarden – … 2025 …" in
    # an October 2024 article states 2024's figures, though it names 2025 too
    figure_years: frozenset[int] = frozenset()

    def earlier(self) -> tuple[frozenset[int], frozenset[str]]:
        """The years and quarters a year before the sentence's own, when it states a figure of then."""
        if not self.baseline:
            return frozenset(), frozenset()
        return frozenset(y - 1 for y in self.years), frozenset(f"{int(p[:4]) - 1}{p[4:]}" for p in self.periods)

    def read_after(self, previous: "SentenceFacts | None", article_time: tuple[frozenset[int], frozenset[str]]
                   ) -> "SentenceFacts":
        """The sentence in its place: the previous sentence of its paragraph counts as context, and a sentence
        without a time of its own speaks about the previous one's ("Im vergangenen Quartal … Der Gewinn stieg …"),
        else about the period its article mainly reports on."""
        context = previous.tokens | previous.context if previous else frozenset()
        if self.years or self.periods:
            return replace(self, context=context)
        if previous and (previous.years or previous.periods):
            return replace(self, context=context, years=previous.years, periods=previous.periods, time_source="paragraph")
        years, periods = article_time
        return replace(self, context=context, years=years, periods=periods, time_source="article" if years else "none")


def sentence_facts(article: Article, start: int, end: int) -> SentenceFacts:
    """Tokens, figures, names and the time a sentence speaks about (relative phrases resolved by the article date)."""
    text = article.text[start:end]
    mentions = [m for m in time_mentions(text, article.date) if m.kind != "baseline"]
    years = {m.year for m in mentions}
    periods = {f"{m.year}-q{m.quarter}" for m in mentions if m.quarter}
    numbers = frozenset(n.group(0).lower() for n in NUMBER.finditer(text)) - {str(y) for y in years}
    stripped = text.rstrip("\"“”»«'’)")
    return SentenceFacts(
        doc_id=article.doc_id, start=start, end=end, text=text, tokens=frozenset(tokenize(text)), numbers=numbers,
        has_unit=bool(_UNIT.search(text)), years=frozenset(years), periods=frozenset(periods),
        names=tuple((next(g for g in m.groups() if g), m.start()) for m in _NAME.finditer(text)),
        person_cue=bool(_PERSON_CUE.search(text)),
        date_cue=bool(_DATE_CUE.search(text)), place_cue=bool(_PLACE_CUE.search(text)),
        heading=not stripped.endswith((".", "!", "?", ":")) and len(text.split()) < 10 and not any(c.isdigit() for c in text),
        question=stripped.endswith("?"),
        baseline=bool(BASELINE.search(text)), change_cue=bool(_CHANGE_CUE.search(text)),
        figure_years=frozenset().union(*figure_years(text, article.date).values()))


def main_period(sentences: Sequence[SentenceFacts]) -> tuple[frozenset[int], frozenset[str]]:
    """The quarter an article mainly reports on (the one its sentences name most often), as (years, quarters)."""
    counts: dict[str, int] = {}
    for facts in sentences:
        for period in facts.periods:
            counts[period] = counts.get(period, 0) + 1
    if not counts:
        return frozenset(), frozenset()
    period = max(sorted(counts), key=counts.get)
    return frozenset({int(period[:4])}), frozenset({period})
