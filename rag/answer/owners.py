"""Whose role or figure a sentence names: "Wer ist die Finanzchefin von Meta?" is not answered by "… klang die
Finanzchefin von Microsoft schon etwas zurückhaltender", nor "Wer ist der Chef von OpenAI?" by "Meta-Chef Mark
Zuckerberg …", however well the rest of the sentence matches.

Why: the selector weighs words, not what they belong to; a sentence holding the asked noun and both names scores as
the answer. German binds a noun to its owner in a few fixed forms (``rag.lang.de.OWNED``: "Meta-Chef", "Metas Chef",
"der Chef von Meta", "der Chef der Broncos"; an English question: "Meta's CFO", "the chief of OpenAI", read with the
dictionary's translations of the noun). A sentence that names the asked owner but binds every mention of the asked
noun to another name speaks about someone else's.

A figure belongs to who acts in its clause: "Google plant mit 75 Milliarden …" gives Google's, also in a sentence that
names Microsoft in its clause before (``another_ones``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from rag.lang import pos
from rag.lang.de import looks_english, owned_nouns, tokenize
from rag.lang.dictionary import Dictionary
from rag.answer.features import holds_term, question_names


@dataclass(frozen=True)
class Owned:
    """A noun of the question (the stems it may take in German: an English one's translations) and the stems of
    the name it belongs to."""

    noun: frozenset[str]
    owner: frozenset[str]


def _noun_stem(word: str) -> str | None:
    stems = tokenize(word)
    return stems[-1] if stems else None


def question_owned(question: str, dictionary: Dictionary | None = None) -> tuple[Owned, ...]:
    """The nouns a question binds to a name: "die Finanzchefin von Meta" (Finanzchefin of Meta), in English
    "Meta's CFO" with the dictionary's translations of the noun (Finanzchef, Finanzchefin, Finanzvorstand)."""
    english = looks_english(question)
    if english and dictionary is None:
        return ()
    found = []
    for noun, owner in owned_nouns(question, english):
        owner_stems = frozenset(tokenize(owner))
        if english:
            stems = frozenset(s for german in dictionary.translations(noun) if (s := _noun_stem(german)))
        else:
            stems = frozenset({stem}) if (stem := _noun_stem(noun)) and pos.is_name(owner) else frozenset()
        if stems and owner_stems:
            found.append(Owned(stems, owner_stems))
    return tuple(found)


def _matches(word_stem: str, nouns: frozenset[str]) -> bool:
    """The sentence's word is the noun, or a compound ending in it ("Konzernchef" for "Chef")."""
    return word_stem in nouns or any(len(n) > 3 and word_stem.endswith(n) for n in nouns)


def _owner_is(owner: str, wanted: frozenset[str]) -> bool:
    stems = set(tokenize(owner))
    return any(holds_term(w, stems) for w in wanted) or any(holds_term(s, wanted) for s in stems)


def mentions(quote: str, owned: Owned) -> int:
    """How often the quote names the asked noun (alone or as a compound's last part)."""
    return sum(1 for t in tokenize(quote) if _matches(t, owned.noun))


def elsewhere(quote: str, owned: Owned) -> bool:
    """The quote names the asked owner, but every mention of the asked noun in it belongs to another name: it
    speaks about someone else's. Only a quote that names both looks like the answer; one that names the noun's owner
    otherwise ("Präsident der Task Force …" for the president of "TUMAS", its abbreviation) is not judged."""
    count = mentions(quote, owned)
    stems = set(tokenize(quote))
    if not count or not any(holds_term(o, stems) for o in owned.owner):
        return False
    others = 0
    for noun, owner in owned_nouns(quote):
        stem = _noun_stem(noun)
        if not stem or not _matches(stem, owned.noun):
            continue
        if _owner_is(owner, owned.owner):
            return False
        if pos.is_name(owner):
            others += 1
    return others >= count


# Where a clause ends: a comma that is no decimal comma, a semicolon, colon or dash, a line or a sentence end (not a
# parenthesis: "Amazon (mit AWS als Cloud-Marktführer) kommunizierte … 100 Milliarden Dollar" is one clause).
_CLAUSE_BREAK = re.compile(r"(?<!\d),|,(?!\d)|[;:–—\n]|(?<=[.!?])\s")
# An English question's names: capitalised words after its first ("Q4" or "H1" are times).
_ENGLISH_NAME = re.compile(r"(?<!^)\b[A-Z][a-z][\w-]*")
# Short capitals abbreviate common nouns as often as names ("KI", "AI", "CEO", "US"): they are not counted as names.
_ABBREVIATION = re.compile(r"[A-ZÄÖÜ]{1,3}")


def clause_around(quote: str, short: str) -> str | None:
    """The clause of ``quote`` that holds ``short``, from the break before it (kept: a comma or colon tells that the
    clause does not open a sentence) to the break after it, or None when the quote does not hold it (", Google plant
    mit 75 Milliarden US-Dollar Investitionen in den Ausbau von KI und Cloud" in "Zum Vergleich: Microsoft will 2025
    80 Milliarden Dollar …, Google plant mit 75 Milliarden US-Dollar …")."""
    at = quote.find(short)
    if at < 0:
        return None
    start = max((m.start() for m in _CLAUSE_BREAK.finditer(quote, 0, at)), default=0)
    after = _CLAUSE_BREAK.search(quote, at + len(short))
    return quote[start:after.start() if after else len(quote)]


def asked_names(question: str) -> list[str]:
    """The names a question asks about: the tagger's proper names of a German question (not its first word), the
    capitalised words after the first of an English one, a genitive's "'s" dropped ("Meta's" → "Meta")."""
    if not looks_english(question):
        return question_names(question)
    return [re.sub(r"['’]s$", "", w) for w in _ENGLISH_NAME.findall(question.strip())]


def names_any(text: str, names: Sequence[str]) -> bool:
    """Whether ``text`` names one of ``names`` (abbreviations aside: ``_ABBREVIATION``), also in the genitive."""
    return _owner_is(text, frozenset(t for n in names if not _ABBREVIATION.fullmatch(n) for t in tokenize(n)))


def someone_elses(clause: str, names: Sequence[str]) -> bool:
    """The clause names who acts or owns in it (``rag.lang.pos.acting_names``), and none of the question's names:
    the figure in it is another's ("Für das laufende Jahr 2026 plant Meta … 115 bis 135 Milliarden US-Dollar" for
    "Wie viel will Microsoft 2026 in Rechenzentren investieren?")."""
    asked = [n for n in names if not _ABBREVIATION.fullmatch(n) and tokenize(n)]
    if not asked or names_any(clause, asked):
        return False
    return any(not _ABBREVIATION.fullmatch(n) for n in pos.acting_names(clause))  # tagged last: ~4 ms a clause


def another_ones(quote: str, short: str, names: Sequence[str]) -> bool:
    """Whether the short answer ``short`` is, in ``quote``, the figure of another than the asked ``names``: its
    clause (``clause_around``) is ``someone_elses``."""
    clause = clause_around(quote, short)
    return clause is not None and someone_elses(clause, names)
