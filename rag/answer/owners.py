"""Whose role or figure a sentence names: "Wer ist die Finanzchefin von Meta?" is not answered by "… klang die
Finanzchefin von Microsoft schon etwas zurückhaltender", nor "Wer ist der Chef von OpenAI?" by "Meta-Chef Mark
Zuckerberg …", however well the rest of the sentence matches.

Why: the selector weighs words, not what they belong to; a sentence holding the asked noun and both names scores as
the answer. German binds a noun to its owner in a few fixed forms (``rag.lang.de.OWNED``: "Meta-Chef", "Metas Chef",
"der Chef von Meta", "der Chef der Broncos"; an English question: "Meta's CFO", "the chief of OpenAI", read with the
dictionary's translations of the noun). A sentence that names the asked owner but binds every mention of the asked
noun to another name speaks about someone else's.
"""

from __future__ import annotations

from dataclasses import dataclass

from rag.lang import pos
from rag.lang.de import looks_english, owned_nouns, tokenize
from rag.lang.dictionary import Dictionary
from rag.answer.features import holds_term


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
