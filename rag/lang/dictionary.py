"""English words in German, from the Ding dictionary (Debian's ``trans-de-en``, TU Chemnitz, GPL-2+).

Why: an English question shares hardly a word with the German sentence that answers it, so the answer selector's
lexical signals (coverage of the question's terms, their proximity, what a sentence adds) say nothing for it. The
selector now also counts, for an English question, the German translations of its words that the retrieved
passages use (``rag.answer.features.english_gloss``), and BM25 searches those words
(``rag.retrieve.retrieval.Retriever.gloss_search``). XQuAD-de's held-out half asked in English, with the English
selector retrained (``rag eval``): Recall@1 0.819 → 0.844, answers contain the gold answer 0.750 → 0.781,
short-answer F1 0.317 → 0.362, questions about removed articles declined 0.710 → 0.813 (false abstention 0.034 →
0.045); German questions are unchanged. Without the dictionary, English questions are searched and answered as
before (by the selector trained without it). Reading the annotations out before the alternatives (``FORMAT`` 2)
gave irregular verbs their translations ("to spend {spent; spent}" had none; "sell", "buy", "found" lost theirs):
XQuAD-de's held-out half in English, Recall@1 0.844 → 0.846, contains gold 0.779 → 0.781, false abstention 0.045
→ 0.042 (removed-article questions declined 0.813 → 0.798).

The dictionary is read from the user's system (``settings.english_dictionary``), not shipped: it is GPL data and 25
MB. Its lines are ``German entries :: English entries``, both sides split by ``|`` into aligned sub-entries (a
headword, its inflections, examples) whose alternatives are separated by ``;``; annotations stand in ``{}``, ``[]``,
``()`` and abbreviations between slashes (``chief financial officer /CFO/``). Only one-word translations are kept: a
phrase's words are no translation of each other. An English phrase of two or three words is kept whole with its
translations of up to three words ("net income" → Nettogewinn, "chief financial officer" → Finanzchef, "artificial
intelligence" → künstliche Intelligenz) and found in a question as those words in a row (``english_terms``): many
German compounds are English phrases. XQuAD-de's held-out half asked in English, the selectors retrained (``rag
train-answerer``): contains gold 0.772 → 0.788, false abstention 0.051 → 0.045, gold citation 0.853 → 0.864,
removed-article questions declined 0.813 → 0.798, short-answer F1 0.361 → 0.358. The parsed table is cached as JSON
(20 MB, read in one second instead of parsed in five; the cache of an earlier format is removed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Collection, Iterable, Mapping

from rag.lang.de import tokenize
from rag.lang.parsed import parsed_once

FORMAT = 4  # bump when ``parse`` changes (part of the cache file's name)
_ANNOTATION = re.compile(r"\{[^}]*\}|\[[^\]]*\]|\([^)]*\)|<[^>]*>")
_ABBREVIATION = re.compile(r"/([^/\s]+)/")
_WORD = re.compile(r"[^\W\d_][\w'-]*")
# Placeholders of the entries ("etw. erwarten :: to expect sth."): not part of the word.
_GERMAN_PLACEHOLDERS = frozenset({"etw.", "jdm.", "jdn.", "jds.", "jd.", "sich"})
_ENGLISH_PLACEHOLDERS = frozenset({"to", "sth.", "sb.", "sb.'s", "sth.'s", "one's", "oneself", "a", "an", "the"})
PHRASE_WORDS = 3  # the longest phrase kept whole


def _short_alternatives(alternatives: str, placeholders: frozenset[str], fold: bool) -> list[str]:
    """The alternatives of a sub-entry of one to ``PHRASE_WORDS`` words (joined by one space) once annotations and
    placeholders are gone. Annotations go first: they hold semicolons too ("to spend {spent; spent}"), which are
    no alternatives' ends."""
    out = []
    for alternative in _ANNOTATION.sub(" ", _ABBREVIATION.sub(" ", alternatives)).split(";"):
        words = [w for w in alternative.split() if (w.casefold() if fold else w) not in placeholders]
        if 1 <= len(words) <= PHRASE_WORDS and all(_WORD.fullmatch(w) for w in words[1:]):
            out.append(" ".join(words).casefold() if fold else " ".join(words))
    return out


def parse(lines: Iterable[str]) -> dict[str, list[str]]:
    """English word (case-folded) → the German one-word translations the dictionary gives for it, sorted."""
    table: dict[str, set[str]] = {}
    for line in lines:
        if line.startswith("#") or "::" not in line:
            continue
        german, english = line.rstrip("\n").split("::", 1)
        for de, en in zip(german.split("|"), english.split("|")):
            targets = _short_alternatives(de, _GERMAN_PLACEHOLDERS, fold=False)
            if not targets:
                continue
            single = [t for t in targets if " " not in t]
            words = _short_alternatives(en, _ENGLISH_PLACEHOLDERS, fold=True)
            words += [a.casefold() for a in _ABBREVIATION.findall(en)]
            for word in words:
                # a phrase translates a phrase ("artificial intelligence": künstliche Intelligenz), a word a word
                chosen = targets if " " in word else single
                if chosen:
                    table.setdefault(word, set()).update(chosen)
    return {word: sorted(targets) for word, targets in table.items()}


def english_words(text: str) -> list[str]:
    """The words of an English text to translate: case-folded, at least three letters, without bm25s's English stop
    words (the translations of the other function words, "how" or "much", are German stop words, which
    ``tokenize`` drops)."""
    from bm25s.stopwords import STOPWORDS_EN

    return [w for w in (m.casefold() for m in _WORD.findall(text)) if len(w) >= 3 and w not in STOPWORDS_EN]


def english_terms(text: str) -> list[str]:
    """``english_words`` and the phrases of two or three words in a row the text holds (case-folded, its own
    words, function words inside included: "net income", "chief financial officer", "head of state"): the
    keys a question is looked up by."""
    words = [m.casefold() for m in _WORD.findall(text)]
    phrases = [" ".join(words[i:i + n]) for n in range(2, PHRASE_WORDS + 1) for i in range(len(words) - n + 1)]
    return english_words(text) + phrases


def translations_used(question: str, used: Collection[str], dictionary: "Dictionary") -> list[str]:
    """The German translations of an English question's words and phrases (``english_terms``) that have a stem in
    ``used`` (the stems of the passages at hand), each once: the words the question would have used in German, as
    far as the passages show. Restricting the dictionary's many senses of a word ("quarter": Viertel, Gegend,
    Seite, …) to the passages' words leaves those the articles speak of."""
    return list(dict.fromkeys(german for term in english_terms(question) for german in dictionary.translations(term)
                              if any(stem in used for stem in tokenize(german))))


@dataclass(frozen=True)
class Dictionary:
    """English → German one-word translations."""

    words: Mapping[str, list[str]]

    def translations(self, word: str) -> list[str]:
        return self.words.get(word.casefold(), [])


def configured_dictionary(source: Path | str | None, cache_dir: Path | str) -> Dictionary | None:
    """The dictionary a setting names (``settings.english_dictionary``, ``dictionary_cache_dir``), read once per
    process; None when the setting is None or the file cannot be read."""
    return cached_dictionary(Path(source), Path(cache_dir)) if source else None


@lru_cache(maxsize=2)
def cached_dictionary(source: Path, cache_dir: Path) -> Dictionary | None:
    """``load_dictionary``, once per process."""
    return load_dictionary(source, cache_dir)


def load_dictionary(source: Path, cache_dir: Path) -> Dictionary | None:
    """The dictionary at ``source``, parsed once and then read from ``cache_dir`` (``rag.lang.parsed``); None when
    ``source`` is missing or unreadable (English questions then go without a gloss)."""
    words = parsed_once(source, cache_dir, f"en-de-f{FORMAT}", parse)
    return None if words is None else Dictionary(words)
