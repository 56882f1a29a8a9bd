"""Whose role or figure a sentence names: "Wer ist die Finanzchefin von Meta?" is not answered by "… klang die
Finanzchefin von Microsoft schon etwas zurückhaltender", nor "Wer ist der Chef von OpenAI?" by "Meta-Chef Mark
Zuckerberg …", however well the rest of the sentence matches.

Why: the selector weighs words, not what they belong to; a sentence holding the asked noun and both names scores as
the answer. German binds a noun to its owner in a few fixed forms (``rag.lang.de.OWNED``: "Meta-Chef", "Metas Chef",
"der Chef von Meta", "der Chef der Broncos"). A sentence every one of whose mentions of the asked noun belongs to
another name speaks about someone else's.
"""

from __future__ import annotations

from dataclasses import dataclass

from rag.lang import pos
from rag.lang.de import looks_english, owned_nouns, tokenize
from rag.answer.features import holds_term


@dataclass(frozen=True)
class Owned:
    """A noun of the question (its stems) and the stems of the name it belongs to."""

    noun: str
    owner: frozenset[str]


def _noun_stem(word: str) -> str | None:
    stems = tokenize(word)
    return stems[-1] if stems else None


def question_owned(question: str) -> tuple[Owned, ...]:
    """The nouns a German question binds to a name ("die Finanzchefin von Meta" → Finanzchefin of Meta)."""
    if looks_english(question):
        return ()
    found = []
    for noun, owner in owned_nouns(question):
        stem, owner_stems = _noun_stem(noun), frozenset(tokenize(owner))
        if stem and owner_stems and pos.is_name(owner):
            found.append(Owned(stem, owner_stems))
    return tuple(found)


def _matches(word_stem: str, noun: str) -> bool:
    """The sentence's word is the noun, or a compound ending in it ("Konzernchef" for "Chef")."""
    return word_stem == noun or (len(noun) > 3 and word_stem.endswith(noun))


def _owner_is(owner: str, wanted: frozenset[str]) -> bool:
    stems = set(tokenize(owner))
    return any(holds_term(w, stems) for w in wanted) or any(holds_term(s, wanted) for s in stems)


def mentions(quote: str, owned: Owned) -> int:
    """How often the quote names the asked noun (alone or as a compound's last part)."""
    return sum(1 for t in tokenize(quote) if _matches(t, owned.noun))


def elsewhere(quote: str, owned: Owned) -> bool:
    """Every mention of the asked noun in ``quote`` belongs to another name than the asked owner, and at least one
    does: the quote speaks about someone else's."""
    count = mentions(quote, owned)
    if not count:
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
