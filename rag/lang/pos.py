"""German parts of speech from HanTa (the Hanover Tagger): which words are nouns, names, numbers, articles, verbs.

Why a tagger: the short answer is usually a noun phrase ("die Gruppe Venom", "115 bis 135 Milliarden US-Dollar"),
and capitalisation alone cannot tell a German noun from a name, a sentence-initial word or a capitalised adjective.
HanTa is pure Python and ships its German model (``morphmodel_ger.pgz``) inside the
package, so it needs no download and no network. The model is loaded once, on first use, never at import
(about 0.2 s). Tagging one sentence of 25 words takes about 4 ms at the median, 9 ms at the 90th
percentile (words its lexicon lacks are analysed into morphemes, the slow part); measured on the quotes the
answerer chose for XQuAD-de's 1,190 questions, one core.

The tags are STTS as HanTa writes them ("ADJ(A)", "VV(FIN)"); ``word_class`` groups them into the few classes the
answer stages need (``CLASSES``).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Sequence

from rag.lang import de

MODEL = "morphmodel_ger.pgz"

# STTS tag (as HanTa writes it, before any "(…)" or "_…" suffix) → word class.
_CLASS_OF = {
    "NN": "noun", "NNA": "noun", "NNI": "noun", "ACR_NN": "noun",
    "NE": "name", "ACR_NE": "name", "FM": "name",
    "CARD": "number",
    "ADJ(A)": "adja", "ADJ(D)": "adjd", "ADV": "adv", "PROAV": "adv", "PWAV": "adv",
    "ART": "det", "PDAT": "det", "PIAT": "det", "PPOSAT": "det", "PWAT": "det", "PRELAT": "det",
    "APPR": "prep", "APPRART": "prep", "APPO": "prep", "APZR": "prep",
    "PPER": "pron", "PRF": "pron", "PIS": "pron", "PDS": "pron", "PPOSS": "pron", "PRELS": "pron", "PWS": "pron",
    "KON": "conj", "KOUS": "conj", "KOUI": "conj", "KOKOM": "conj",
}
CLASSES = ("noun", "name", "number", "adja", "adjd", "adv", "det", "prep", "pron", "conj", "verb", "particle",
           "other")
# Classes of a noun phrase's words ("die beiden größten deutschen Städte", "115 Milliarden US-Dollar") …
PHRASE = frozenset({"det", "adja", "number", "noun", "name"})
# … and of its head.
HEADS = frozenset({"noun", "name", "number"})


@lru_cache(maxsize=1)
def _tagger():
    from HanTa import HanoverTagger

    tagger = HanoverTagger.HanoverTagger(MODEL)
    # HanTa looks up its lexicon's words but analyses every other word into morphemes again each time it meets it
    # (about 1–4 ms a word, most of the tagging time). The analysis depends on the word alone, so it is kept:
    # the articles' rare words recur from one answer to the next (on XQuAD-de's held-out questions half the
    # analyses were repeats, and tagging time per answer fell from 12.6 to 7.7 ms).
    tagger.analyze_forward = lru_cache(maxsize=1 << 16)(tagger.analyze_forward)
    return tagger


def warm_up() -> None:
    """Load the tagger now (about 0.2 s) rather than in the first answer that needs it."""
    _tagger()


def word_class(tag: str) -> str:
    """The class (one of ``CLASSES``) of one STTS tag."""
    if tag in _CLASS_OF:
        return _CLASS_OF[tag]
    if tag[:2] in ("VV", "VA", "VM"):
        return "verb"
    if tag.startswith("PTK"):
        return "particle"
    return "other"


# Longer words are tagged by their last this many characters: HanTa's analysis of an unknown word takes time
# quadratic in its length (40 characters 11 ms, 160 characters 0.13 s), so one giant token in a document (a URL, a
# data blob) must not stall an answer; a German compound takes its word class from its last part anyway.
MAX_WORD = 30


def _bounded(word: str) -> str:
    if len(word) <= MAX_WORD:
        return word
    ending = word[-MAX_WORD:]
    return ending[:1].upper() + ending[1:] if word[:1].isupper() else ending


@lru_cache(maxsize=4096)
def tag_words(words: tuple[str, ...]) -> tuple[str, ...]:
    """The STTS tag of each word of one sentence (a tuple, so that repeated sentences are tagged once)."""
    return tuple(_tagger().tag_sent([_bounded(word) for word in words], taglevel=0)) if words else ()


def word_classes(words: Sequence[str]) -> tuple[str, ...]:
    """The class of each word of one sentence (punctuation may be passed as words of its own: it helps the tagger)."""
    return tuple(word_class(tag) for tag in tag_words(tuple(words)))


# A word as the tagger takes it: letters and digits, joined by hyphens, dots and apostrophes ("Scale-AI", "Llama-4").
_NAME_WORD = re.compile(r"[^\W_]+(?:[-.'’][^\W_]+)*")


def proper_names(text: str) -> list[str]:
    """The capitalised words of ``text`` that the tagger calls proper names ("Microsoft", "Kenyatta"; not the nouns
    "Mitarbeiter" or "Präsident")."""
    words = _NAME_WORD.findall(text)
    return [w for w, c in zip(words, word_classes(words)) if c == "name" and w[:1].isupper()]


# What comes before a clause that does not open a sentence.
_CLAUSE_OPENING = re.compile(r"\s*[,;:–—]")


def acting_names(text: str) -> list[str]:
    """The proper names of ``text`` (a clause, with the comma or colon before it when it does not open a sentence)
    that are no preposition's complement: who acts or owns in it (", Google plant mit 75 Milliarden", "Für 2026 plant
    Meta …"), not where or of what ("der Mädchen in den Küstengebieten von Malindi", "von OpenAI abgeworben"). A
    capitalised word the tagger reads as a verb is a name too ("Google"), unless it opens the sentence."""
    words = _NAME_WORD.findall(text)
    classes = word_classes(words)
    opens = not _CLAUSE_OPENING.match(text)  # its first word opens a sentence: its capital says nothing
    found = []
    for i, (word, cls) in enumerate(zip(words, classes)):
        if not word[:1].isupper() or not (cls == "name" or (cls == "verb" and (i or not opens))):
            continue
        j = i - 1
        while j >= 0 and (classes[j] in PHRASE or classes[j] == "conj"):  # back over its phrase ("von KI und Cloud")
            j -= 1
        if j < 0 or classes[j] != "prep":
            found.append(word)
    return found


# Classes a capitalised word after "von" may have that rule it out as a name: a common noun ("des Konzerns") or a
# word of the sentence's frame. Any other (a name, or a word the tagger does not know: "Google" is read as a verb)
# counts as one.
_NOT_NAMES = frozenset({"noun", "det", "pron", "adv", "prep", "conj", "adja", "adjd", "number"})


@lru_cache(maxsize=4096)
def is_name(word: str) -> bool:
    """Whether the tagger reads ``word`` as a name where one belongs to another ("die Chefin von Microsoft")."""
    return word_classes(("die", "Chefin", "von", word))[-1] not in _NOT_NAMES


@lru_cache(maxsize=4096)
def is_comparative(word: str) -> bool:
    """Whether HanTa analyses ``word`` as a comparative ("teurer", "höher", "besser"; not "chemischer", "welcher")."""
    _, morphemes, _ = _tagger().analyze(_bounded(word), taglevel=3)
    return any(tag == "ADJ_COMP" for _, tag in morphemes)


_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def asks_comparison(question: str) -> bool:
    """A comparison: named as one ("im Vergleich", "gegenüber", "than"), or a comparative with its "als" a few
    words on ("mehr gekostet als", "schneller gewachsen als") or with alternatives after it ("Was war teurer: A oder
    B?", "Wer steckt mehr Geld in KI, Meta oder Microsoft?").

    Why the tagger: "-er" ends comparatives and inflected adjectives alike ("Verwendung chemischer Verbindungen als
    Arzneimittel" asks no comparison), and only a comparison needs a sentence for each side."""
    if de.COMPARISON_QUESTION.search(question):
        return True
    words = [w.lower() for w in _WORD.findall(question)]
    if "als" not in words and "oder" not in words:
        return False  # no comparison without either: the tagger is not asked
    for i, word in enumerate(words):
        if word in de.COMPARATIVE_WORDS or (word.endswith("er") and len(word) > 4 and is_comparative(word)):
            after = words[i + 1:]
            if "als" in after[:de.COMPARISON_SPAN + 1] or "oder" in after:
                return True
    return False


def asks_yes_no(question: str) -> bool:
    """A question answered "ja" or "nein" ("Hat Meta AI mehr Nutzer als ChatGPT?", "Did Meta invest in 2025?"): it
    opens with its finite verb (the tagger's V…(FIN), or an English auxiliary), has no question word and offers no
    alternatives ("… oder …"), and is no polite imperative ("Nennen Sie …") or sentence ended by "." or "!".

    Why: its answer is not a span of a quote, so any short answer picked from the quote would be a random figure
    ("sieben" for "War der Umsatz höher als …?"); the quotes answer it."""
    text = question.strip()
    if not text or text[-1] in ".!" or de.ALTERNATIVES.search(text) or any(
            pattern.search(text) for _, pattern in de.QUESTION_FORMS):
        return False
    words = _NAME_WORD.findall(text)
    if not words:
        return False
    if words[0].lower() in de.ENGLISH_AUXILIARIES:
        return True
    tag = tag_words(tuple(words))[0]
    if not tag.endswith("(FIN)") or tag[:2] not in ("VA", "VM", "VV"):
        return False
    return not (tag.startswith("VV") and len(words) > 1 and words[1].lower() in de.IMPERATIVE_PRONOUNS)
