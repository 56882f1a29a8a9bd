"""German sentence boundaries as character spans.

Why our own rules: generic splitters cut "z. B.", "Mrd." or "1. Februar 2026"
apart, and citations must quote whole sentences at exact offsets. A boundary is
a line break, or ``.``/``!``/``?`` followed by white space and an upper-case
letter, digit or opening quote — unless the word before the dot is a known
abbreviation or a single letter, or the dot ends an ordinal before a month name.
A paragraph's dateline ("Berlin – ", ``rag.lang.de.DATELINE``) belongs to no
sentence.
"""

from __future__ import annotations

import re

from rag.lang.de import ABBREVIATIONS, DATELINE, MONTH_NUMBERS, SENTENCE_STARTERS

_CANDIDATE = re.compile(r"[.!?…]+[\"“”»«'’)\]]*(?=\s+[\"„“»«'(\[]?[A-ZÄÖÜ0-9])")
_WORD_BEFORE = re.compile(r"([\wÄÖÜäöüß]+)$")
_NEXT_WORD = re.compile(r"\s+([\wÄÖÜäöüß]+)")


def _is_boundary(text: str, dot: int, end: int) -> bool:
    """Whether the punctuation at ``text[dot:end]`` really ends a sentence."""
    if text[dot] != ".":
        return True
    before = _WORD_BEFORE.search(text, 0, dot)
    if before is None:
        return True
    word = before.group(1)
    if word.lower() in ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
        return False
    if word.isdigit():
        following = _NEXT_WORD.match(text, end)
        if following and following.group(1).lower() in MONTH_NUMBERS:
            return False
        if len(word) <= 2 and following and following.group(1)[:1].isupper() and not following.group(1).isdigit():
            # "am 3. Quartal" reads as an ordinal; a sentence ending "… 2024." has a year, not a day.
            return following.group(1).lower() in SENTENCE_STARTERS
    return True


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Spans ``[s, e)`` of the sentences in ``text[start:end]``, white space trimmed, none empty."""
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    for line in re.finditer(r"[^\n]+", text[start:end]):
        line_start, line_end = start + line.start(), start + line.end()
        dateline = DATELINE.match(text, line_start, line_end)
        cuts = [dateline.end() if dateline else line_start]
        for match in _CANDIDATE.finditer(text, line_start, line_end):
            if match.end() > cuts[0] and _is_boundary(text, match.start(), match.end()):
                cuts.append(match.end())
        cuts.append(line_end)
        for left, right in zip(cuts, cuts[1:]):
            while left < right and text[left].isspace():
                left += 1
            while right > left and text[right - 1].isspace():
                right -= 1
            if left < right and (not spans or left >= spans[-1][1]):
                spans.append((left, right))
    return spans
