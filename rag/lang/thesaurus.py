"""German words of the same meaning, from OpenThesaurus (Debian's ``mythes-de``, LGPL).

Why: a question often says in other words what its answer sentence says ("Wer steht an der Spitze von …?" over
"… unter der Führung von …", "Wie viel Geld steckt Meta in KI?" over "Meta investiert …"), and the answer
selector's lexical signals (coverage of the question's terms) then miss the sentence. The selector also counts a
question term as held when the sentence holds a word of one of its synonym sets (``rag.answer.features``, feature
``synonyms``, and ``max_related`` for the question-level decision). With the selector retrained on the same
machine (``rag train-answerer``), XQuAD-de's held-out half: answers containing the gold answer 0.871 → 0.878,
removed-article questions declined 0.913 → 0.936 at false abstention 0.032 → 0.036, short-answer F1 0.468 →
0.464; our German set unchanged at 0.748 correct, its unanswerable questions declined 0.615 → 0.654 (false
abstention 0.037 → 0.047). On a machine without the thesaurus the features are not measured (NaN, read at their
training mean): XQuAD-de 0.869 contains gold, 0.902 removed declined, about where the selector without them was.

A stem is looked up by its base (``rag.lang.de.stem_bases``): the thesaurus lists base forms ("stecken",
"investieren"), questions and sentences inflected ones ("steckt", "investiert"), which Snowball does not always
bring to one stem. So the passages' stems that are only another form of a question's stem count too.

The thesaurus is read from the user's system (``settings.german_thesaurus``), not shipped: it is LGPL data and
28 MB. Its file is MyThes' ``.dat`` format: a line ``word|n`` followed by ``n`` lines ``(part of speech)|synonym|
synonym|…``; a synonym may carry annotations in parentheses ("(ugs.)", "(Oberbegriff)"). Broader and narrower
terms and antonyms ("Oberbegriff", "Unterbegriff", "Antonym") are no synonyms and are left out, and so are phrases:
the selector compares single stems. A set is read once however many of its words head an entry. Parsing the file
takes about two seconds; the sets are then cached as JSON and read in a fraction of that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Collection, Iterable, Mapping

from rag.lang.de import stem_bases, tokenize
from rag.lang.parsed import parsed_once

_ANNOTATION = re.compile(r"\([^)]*\)")
_WORD = re.compile(r"[^\W\d_][\w-]*")
_NOT_SYNONYM = ("(Oberbegriff)", "(Unterbegriff)", "(Antonym)")
# A set this large mixes senses ("Spitze": Gipfel, Höhepunkt, Ecke, Maximum, …): a word of it says little.
MAX_SET = 20
FORMAT = 1  # bump when ``parse`` or ``rag.lang.de.tokenize`` changes (part of the cache file's name)


def parse(lines: Iterable[str]) -> list[frozenset[str]]:
    """The synonym sets of a MyThes ``.dat`` file's lines, as sets of stems (``rag.lang.de.tokenize``), each once;
    only sets with two stems or more."""
    seen: set[frozenset[str]] = set()
    for line in lines:
        if not line.startswith(("-|", "(")):  # an entry's head line "word|n" or the encoding line
            continue
        words = []
        for entry in line.rstrip("\n").split("|")[1:]:
            if any(mark in entry for mark in _NOT_SYNONYM):
                continue
            parts = _ANNOTATION.sub(" ", entry).split()
            if len(parts) == 1 and _WORD.fullmatch(parts[0]):
                words.append(parts[0])
        stems = frozenset(s[0] for s in map(tokenize, words) if len(s) == 1)
        if 2 <= len(stems) <= MAX_SET:
            seen.add(stems)
    return sorted(seen, key=sorted)


@dataclass(frozen=True)
class Thesaurus:
    """Stem → the stems it shares a synonym set with."""

    sets: tuple[frozenset[str], ...]
    by_stem: Mapping[str, tuple[int, ...]]
    # stem → its base, kept: every question looks up the base of every stem of its passages (``used``)
    _bases: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, sets: Iterable[frozenset[str]]) -> "Thesaurus":
        sets = tuple(sets)
        by_stem: dict[str, list[int]] = {}
        for i, stems in enumerate(sets):
            for stem in stems:
                by_stem.setdefault(stem, []).append(i)
        return cls(sets, {stem: tuple(ids) for stem, ids in by_stem.items()})

    def base(self, stem: str) -> str:
        """The stem of the thesaurus's word that ``stem`` is a form of (``rag.lang.de.stem_bases``), else itself."""
        base = self._bases.get(stem)
        if base is None:
            base = self._bases[stem] = next((b for b in stem_bases(stem) if b in self.by_stem), stem)
        return base

    def synonyms(self, stem: str) -> frozenset[str]:
        """The stems that share a set with ``stem``'s base, without that base."""
        base = self.base(stem)
        return frozenset(s for i in self.by_stem.get(base, ()) for s in self.sets[i]) - {base}

    def used(self, stems: Iterable[str], present: Collection[str]) -> dict[str, frozenset[str]]:
        """For each of ``stems`` (a question's), the stems of ``present`` (the passages at hand) that are another
        form of it or of one of its synonyms, where there are any: the words the passages may use for it."""
        bases = {p: self.base(p) for p in present}
        found = {}
        for stem in stems:
            related = self.synonyms(stem) | {self.base(stem)}
            words = frozenset(p for p, b in bases.items() if b in related and p != stem)
            if words:
                found[stem] = words
        return found


def configured_thesaurus(source: Path | str | None, cache_dir: Path | str) -> Thesaurus | None:
    """The thesaurus a setting names (``settings.german_thesaurus``, cached in ``dictionary_cache_dir``), read once
    per process; None when the setting is None or the file cannot be read (questions are then read without
    synonyms)."""
    return load_thesaurus(Path(source), Path(cache_dir)) if source else None


@lru_cache(maxsize=2)
def load_thesaurus(source: Path, cache_dir: Path) -> Thesaurus | None:
    """The thesaurus at ``source``, parsed once and then read from ``cache_dir`` (``rag.lang.parsed``); None when
    the file is missing, unreadable or holds no synonym set."""
    sets = parsed_once(source, cache_dir, f"th-de-f{FORMAT}", lambda lines: [sorted(s) for s in parse(lines)])
    # a file with no synonym set is no thesaurus (another file named by mistake): read as missing, not as one
    # that knows no synonyms, which would tell the selector that no sentence ever says a question's word otherwise
    return Thesaurus.of(frozenset(s) for s in sets) if sets else None
