"""Checks that an answer stays within its sources: markers, figures, quotes.

Why: a language model may cite a passage it was not given, or change a figure
while copying it ("14,3 Milliarden" → "14,8 Mrd."). Three checks make such an
answer visible and let the caller fall back to the extractive answer:

* every ``[n]`` points to a passage that was given;
* every figure of the answer occurs in a passage it cites (same value after
  normalising "14,3"/"14.3", "Mrd."/"Milliarden", "sechs"/"6", "%"/"Prozent";
  a date written "28.01.2026" or "28. Januar 2026" counts as its parts);
* optionally, the answer keeps the figures and names of the best evidence (so a
  model cannot swap in a real figure of the wrong passage);
* every citation's quote is the exact text of its article at ``[start, end)``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Iterable, Mapping, Sequence

from rag.lang.de import DIGITS, ENGLISH_NUMBER_WORDS, MONTH_NUMBERS, NUMBER_WORDS, RANGE_WORD, SCALES

MARKER = re.compile(r"\[(\d+)\]")
_WORDS = {**NUMBER_WORDS, **ENGLISH_NUMBER_WORDS}
_MONTHS = "|".join(MONTH_NUMBERS)
_DATE = re.compile(r"\b(\d{1,2})\.\s?(\d{1,2})\.\s?(\d{4})\b|\b(\d{1,2})\.\s+(" + _MONTHS + r")\s+(\d{4})\b",
                   re.IGNORECASE)
_QUANTITY = re.compile(
    r"(?<![\w.,])(" + DIGITS + "|" + "|".join(sorted(_WORDS, key=len, reverse=True)) + r")(?![\w])"
    r"(?:\s*" + RANGE_WORD + r"\s*(" + DIGITS + r")(?![\w]))?"
    r"(?:\s*(Mrd|Mio|Tsd|Milliarden?|Millionen?|Million|Billionen|Billion|billion|million|bn|tausend|"
    r"Prozent|percent|%|Jahren?|Monaten?|Tagen?|mal)(?![\w])\.?)?",
    re.IGNORECASE)


def _values(literal: str) -> set[float]:
    """The values a written number may mean: "14,3" and "14.3" → 14.3; "1.000" → 1000 or 1.0; "sechs" → 6."""
    word = _WORDS.get(literal.lower())
    if word is not None:
        return {float(word)}
    values = set()
    if re.fullmatch(r"\d{1,3}(?:\.\d{3})+", literal):
        values.add(float(literal.replace(".", "")))
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+", literal):
        values.add(float(literal.replace(",", "")))
    if literal.count(",") + literal.count(".") <= 1:
        values.add(float(literal.replace(",", ".")))
    return values


def _scale(unit: str | None) -> float | None:
    """The factor a unit word stands for ("Mrd." → 10^9); None for units that only count ("Prozent", "Jahre")."""
    if not unit:
        return None
    lowered = unit.lower().rstrip(".")
    if lowered == "billion":
        return 1e12 if unit[0].isupper() else 1e9  # German "Billion" is 10^12, English "billion" 10^9
    return SCALES.get(lowered)


@dataclass(frozen=True)
class Figure:
    """One figure of a text: the values it may mean, times its scale when one follows it."""

    text: str
    values: frozenset[float]
    scale: float | None


def figures(text: str) -> list[Figure]:
    """The figures of ``text`` (``[n]`` markers excluded; dates split into day, month and year).

    In a range the first number takes the scale of the second ("115 bis 135 Milliarden"). Number words count
    only before a unit ("sechs Milliarden", "neun Prozent", "zehnmal"), so "eine Frage" is no figure.
    """
    text = MARKER.sub(" ", text)
    found: list[Figure] = []

    def date_parts(match: re.Match) -> str:
        if match.group(1):
            day, month, year = match.group(1), match.group(2), match.group(3)
        else:
            day, month, year = match.group(4), str(MONTH_NUMBERS[match.group(5).lower()]), match.group(6)
        for part in (day, month, year):
            found.append(Figure(part, frozenset({float(part)}), None))
        return " "

    text = _DATE.sub(date_parts, text)
    for match in _QUANTITY.finditer(text):
        first, second, unit = match.group(1), match.group(2), match.group(3)
        if not first[0].isdigit() and not unit and not second and first.lower() != "zehnmal":
            continue
        scale = _scale(unit)
        found.append(Figure(first, frozenset(_values(first)), scale))
        if second:
            found.append(Figure(second, frozenset(_values(second)), scale))
    return found


def _is_year(figure: Figure) -> bool:
    return figure.scale is None and any(1900 <= v <= 2100 and v == int(v) for v in figure.values)


def _same(a: Figure, b: Figure) -> bool:
    """Whether figure ``a`` of the answer is backed by figure ``b`` of a passage.

    A scaled figure needs the same amount ("14,3 Mrd." = "14,3 Milliarden" = "14.300 Millionen"), never just the
    same digits ("22 Milliarden" is not backed by "22 Millionen" nor by a bare "22"); a bare figure needs the
    same value, written either way.
    """
    if a.scale is not None and b.scale is None:
        return False
    if a.values & b.values and (a.scale is None or a.scale == b.scale):
        return True
    a_scale, b_scale = a.scale or 1.0, b.scale or 1.0
    return any(abs(x * a_scale - y * b_scale) <= 1e-9 * max(abs(x * a_scale), 1.0) for x in a.values for y in b.values)


@dataclass
class GroundingReport:
    """The outcome of the checks; ``problems`` says in German what failed, one sentence each."""

    passed: bool
    markers: list[int] = field(default_factory=list)
    figures_checked: int = 0
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def markers(text: str) -> list[int]:
    """The distinct ``[n]`` numbers of a text, in order of first use."""
    return list(dict.fromkeys(int(m) for m in MARKER.findall(text)))


def check_answer(text: str, passages: Mapping[int, str], require_citation: bool = True,
                 share_figures: Sequence[str] = (), mention: Sequence[Sequence[str]] = (),
                 all_figures: Sequence[str] = ()) -> GroundingReport:
    """Check a generated answer against the numbered passages it was given.

    ``passages`` maps each ``n`` to the text the model saw for it (with its date header, so "2026" read from
    "28. Januar 2026" counts as backed). Two optional checks tie the answer to the evidence the caller trusts
    most: it must share a figure with each text of ``share_figures`` that has figures, give every figure but
    years of each text of ``all_figures`` (a range "115 bis 135" cut to "115" is a wrong answer), and name one of
    the words of each group of ``mention`` (a small model otherwise takes a figure or name from the wrong passage).
    """
    used = markers(text)
    problems = [f"[{n}] verweist auf keine der {len(passages)} gegebenen Textstellen." for n in used if n not in passages]
    cited = [passages[n] for n in used if n in passages]
    if require_citation and not used:
        problems.append("Die Antwort nennt keine Quelle ([n]).")
    backing = [f for passage in cited for f in figures(passage)]
    checked = figures(text)
    for figure in checked:
        if not any(_same(figure, other) for other in backing):
            problems.append(f"Die Zahl „{figure.text}“ steht in keiner zitierten Textstelle.")
    for evidence in share_figures:
        wanted = figures(evidence)
        if wanted and not any(_same(figure, other) for figure in checked for other in wanted):
            problems.append(f"Die Antwort übergeht die Zahlen der besten Belegstelle („{' '.join(evidence.split())[:80]}“).")
    for evidence in all_figures:
        wanted = figures(_DATE.sub(" ", evidence))  # a date says when, it is not the figure asked for
        missing = [f.text for f in wanted if not _is_year(f) and not any(_same(g, f) for g in checked)]
        if missing:
            problems.append(f"Die Antwort lässt {', '.join(missing)} aus der besten Belegstelle aus.")
    lowered = text.lower()
    for group in mention:
        if group and not any(word.lower() in lowered for word in group):
            problems.append(f"Die Antwort nennt {' oder '.join(group)} nicht, obwohl die beste Belegstelle es tut.")
    return GroundingReport(not problems, used, len(checked), problems)


def check_quotes(citations: Iterable, texts: Mapping[str, str]) -> list[str]:
    """Problems with citations whose ``quote`` is not the exact text of their article at ``[start, end)``."""
    problems = []
    for citation in citations:
        text = texts.get(citation.doc_id)
        if text is None:
            problems.append(f"[{citation.n}] zitiert den unbekannten Artikel {citation.doc_id}.")
        elif text[citation.start:citation.end] != citation.quote:
            problems.append(f"[{citation.n}] zitiert nicht wörtlich aus {citation.doc_id} [{citation.start}, {citation.end}).")
    return problems
