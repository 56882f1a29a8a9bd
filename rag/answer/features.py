"""The candidate quotes of the retrieved passages and the domain-general features the learned selector scores them
on (``FEATURES``, per candidate) and the answerability classifier reads (``QUESTION_FEATURES``, per question).

Why these signals: each holds in any German corpus — how close a sentence is to the question (its sentence-pair
vector from the index, IDF-weighted stem coverage, proximity), how well its passage was retrieved, whether it holds
the kind of thing the question asks for that the question does not already contain, what it lacks of the
question's specific terms, and where it stands. The weights are learned (``rag.answer.selection``,
``rag.eval.train_answerer``), never set by hand.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Callable, Collection, Iterable, Mapping, Sequence

import numpy as np

from rag.answer.facts import quarter_periods, sentence_time
from rag.ingest.sentences import sentence_spans
from rag.lang import pos
from rag.lang.de import (ANAPHOR_PATTERN, ANSWER_TYPES, ENGLISH_MONTHS, FIGURE, MONTH_NUMBERS, NAME_PAIR, NUMBER_WORDS,
                         PLACE_PHRASE, UNIT_PATTERN, compound_parts, looks_english, question_type, tokenize)
from rag.lang.dictionary import Dictionary, english_words, translations_used
from rag.lang.thesaurus import Thesaurus

_MONTHS = "|".join(sorted({*MONTH_NUMBERS, *(m for m in ENGLISH_MONTHS if len(m) > 3)}, key=len, reverse=True))
# Figures: digits, or number words from "zwei" up ("ein"/"eine" are articles far more often than numbers).
NUMBER = re.compile(FIGURE.pattern + r"|\b(?:"
                    + "|".join(w for w, v in NUMBER_WORDS.items() if v > 1) + r"|millionen?|milliarden?|dutzend|hälfte)\b",
                    re.I)
YEAR = re.compile(r"(?<![\d.,])(1\d{3}|20\d{2})(?![\d.,]\d)")
MONTH = re.compile(r"\b(?:" + _MONTHS + r")\b", re.I)
DAY_DATE = re.compile(r"\b\d{1,2}\.\s*(?:(?:" + _MONTHS + r")\b|\d{1,2}\.)", re.I)
_CAPITALISED = re.compile(r"\b[A-ZÄÖÜ][\wäöüß-]+")
# A word with a capital letter anywhere: names, German nouns, and names written in lower case first ("xAI", "iPhone").
_HAS_CAPITAL = re.compile(r"\b[\wäöüß-]*[A-ZÄÖÜ][\wäöüß-]*")


@dataclass(frozen=True)
class SentenceInfo:
    """What a sentence holds, computed once per article sentence."""

    start: int
    end: int
    tokens: tuple[str, ...]
    numbers: frozenset[str]
    years: frozenset[str]
    has_month: bool
    has_day_date: bool
    has_unit: bool
    capitalised: frozenset[str]
    cap_pairs: int
    places: int
    anaphoric: bool
    heading: bool
    question: bool
    time_years: frozenset[int] = frozenset()  # years it speaks about, relative ones resolved by the article's date
    time_periods: frozenset[str] = frozenset()  # quarters it speaks about ("2024-q3"), resolved likewise


def sentence_info(text: str, start: int, end: int, article=None) -> SentenceInfo:
    """What the sentence ``text[start:end]`` holds; with its ``article``, also the time it speaks about."""
    s = text[start:end]
    years, periods = frozenset(int(y) for y in YEAR.findall(s)), frozenset()
    if article is not None:
        resolved, periods = sentence_time(s, article.date)
        years = years | resolved
    caps = frozenset(m.group(0).casefold() for m in _CAPITALISED.finditer(s) if m.start() > 0)
    return SentenceInfo(start, end, tuple(tokenize(s)), frozenset(m.group(0) for m in NUMBER.finditer(s)),
                        frozenset(YEAR.findall(s)), bool(MONTH.search(s)), bool(DAY_DATE.search(s)),
                        bool(UNIT_PATTERN.search(s)), caps, len(NAME_PAIR.findall(s)), len(PLACE_PHRASE.findall(s)),
                        bool(ANAPHOR_PATTERN.match(s)), not s.rstrip().endswith((".", "!", "?", "“", '"', "»", ")")),
                        s.rstrip().endswith("?"), years, periods)


@dataclass(frozen=True)
class Candidate:
    """A quotable span (a sentence, or a sentence with the one before it) of one article."""

    doc_id: str
    start: int
    end: int
    position: int  # sentence index in the article
    rank: int  # rank of the best passage it came from
    pair: bool  # the predecessor is included
    time_fit: float  # ``time_match``: 1 the asked time, -1 another one, 0 none said or none asked


FEATURES = (
    "dense", "dense_gap", "dense_rank", "passage_score", "passage_gap", "passage_rank", "passage_dense",
    "coverage", "coverage_gap", "coverage_rank", "coverage_prev", "coverage_next", "coverage_window",
    "partial", "proximity", "novelty", "log_tokens", "first", "rel_position", "pair", "anaphoric",
    "heading", "question", "title_overlap", "missing_name", "specific_missing", "year_match",
    *(f"wants_{t}" for t in ANSWER_TYPES),
    "new_number", "new_year", "has_month", "day_date", "unit", "new_caps", "cap_pairs", "places",
    "amount_x_number", "amount_x_unit", "date_x_year", "date_x_month", "date_x_day", "person_x_pairs",
    "person_x_caps", "place_x_places", "place_x_caps", "other_x_caps", "reason_x_len", "person_x_names",
    "place_x_names", "beyond", "synonyms",
)
# The question kinds whose answer is a proper name: their candidates are tagged for names (``ArticleSentences.names``).
NAME_KINDS = ("person", "place")


@dataclass(frozen=True)
class QuestionView:
    """The question's side of the features, computed once per question."""

    text: str
    kind: str
    tokens: frozenset[str]
    weights: dict[str, float]  # stem → IDF for the stems the index knows
    unknown_share: float  # share of the question's IDF weight on stems the index never uses
    numbers: frozenset[str]
    years: frozenset[str]
    caps: frozenset[str]
    names: frozenset[str]  # stems of the question's capitalised words after its first: names, and German nouns
    periods: frozenset[str] = frozenset()  # quarters asked about ("2024-q3")
    specific: tuple[tuple[str, float], ...] = ()  # the specific terms (names, nouns after the first word, figures) with IDF
    unknown_names: float = 0.0  # share of the question's proper names the index never uses (``_name_check``)
    english: bool = False  # asked in English (``looks_english``): answered by the model trained on English questions
    glossed: bool = False  # English and read with the dictionary's German words (``english_gloss``; maybe none)
    unmentioned: tuple[str, ...] = ()  # the question's proper names when no indexed article mentions any of them
    # question stem → (its share of the question's IDF, the passages' stems for it: another form or a synonym);
    # None: read without the thesaurus (``rag.lang.thesaurus``)
    synonyms: Mapping[str, tuple[float, frozenset[str]]] | None = None


def question_names(question: str) -> list[str]:
    """The question's proper names as the tagger sees them, but none of one letter ("ein Feld F") and not its first
    word: a short English question that ``looks_english`` misses has its question word called a name ("Where is
    body punishment no longer practiced?")."""
    if looks_english(question):
        return []
    first = re.match(r"\W*(\w+)", question)
    return [w for w in pos.proper_names(question) if len(w) > 1 and not (first and w == first.group(1))]


# A name this long that the index knows with one letter changed, added, dropped or swapped is that name mistyped
# ("Lufthanza"): the question is answered, not declined with "Keiner der Artikel erwähnt Lufthanza".
TYPO_LENGTH = 6
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def one_edit(stem: str) -> set[str]:
    """Every spelling one edit from ``stem``: a letter dropped, swapped with the next, replaced or added."""
    splits = [(stem[:i], stem[i:]) for i in range(len(stem) + 1)]
    dropped = {a + b[1:] for a, b in splits if b}
    swapped = {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    replaced = {a + c + b[1:] for a, b in splits if b for c in _LETTERS}
    added = {a + c + b for a, b in splits for c in _LETTERS}
    return (dropped | swapped | replaced | added) - {stem}


def _name_check(question: str, known: Mapping[str, float],
                knows: Callable[[Iterable[str]], Collection[str]] | None) -> tuple[list[str], list[str]]:
    """The question's proper names (``question_names``, tagged once: "Apple", "Kenyatta", not the nouns
    "Mitarbeiter" or "Präsident") and those of them of which the index knows no stem (``known``: the question's
    stems it uses). With ``knows`` (the index's lookup of any stems), a name counts as known when the index knows it
    without a genitive "s" ("Odingas", "Wesleys"), when it splits into parts the index knows (the tagger calls some
    compounds names: "Primfeld"), and when it is a long name mistyped (``TYPO_LENGTH``); a name that is a stopword
    without its "s" ("Gegens") cannot be judged and counts as known. English questions have none: the German tagger
    calls most English words names.

    Why: a question about a person or company no indexed article mentions has no answer there, while an unknown
    common noun is often just another word for one the articles use (the share of unknown names as an
    answerability feature, at 4 % out-of-fold false abstention: removed-article questions declined 0.941 → 0.947
    out of fold and 0.906 → 0.921 on XQuAD-de's held-out half; unanswerable questions of the German set's held-out
    half 0.46 → 0.54)."""
    def known_name(name: str) -> bool:
        stems = tokenize(name)
        if any(stem in known for stem in stems):
            return True
        if knows is None:
            return False
        bare = tokenize(name[:-1]) if name.endswith("s") else None
        return (bare is not None and (not bare or bool(knows(bare)))) or any(
            compound_parts(stem, knows) or (len(stem) >= TYPO_LENGTH and knows(one_edit(stem))) for stem in stems)

    names = question_names(question)
    return names, [name for name in names if not known_name(name)]


def _share(names: Sequence[str], missing: Sequence[str]) -> float:
    return len(missing) / len(names) if names else 0.0


def question_compounds(question: str, weights: Mapping[str, float],
                       known: Callable[[Iterable[str]], Collection[str]]) -> dict[str, tuple[str, ...]]:
    """The question's words that no passage uses (not in ``weights``) and that split into a modifier and a head
    the passages do use (``known``), with those parts."""
    return {t: parts for t in dict.fromkeys(tokenize(question))
            if t not in weights and not t[:1].isdigit() and (parts := compound_parts(t, known))}


def english_gloss(question: str, passage_terms: Collection[str], dictionary: Dictionary,
                  thesaurus: Thesaurus | None = None) -> set[str]:
    """The stems of the German translations of an English question's words that the passages its candidates come
    from use (``passage_terms``; ``rag.lang.dictionary.translations_used``). With ``thesaurus``: for a word none of
    whose translations the passages use, the passages' synonyms of its translations ("revenue": Erlös, Ertrag →
    Umsatz), so that a word the dictionary renders otherwise than the articles still counts. Measured on XQuAD-de's
    held-out half asked in English, with the models retrained: contains gold 0.812 → 0.815, removed-article
    questions declined 0.763 → 0.805, false abstention 0.033 → 0.040. (The synonyms of every translation, tried
    before, cost 0.812 → 0.801: most words have a translation the passages use, and their synonyms are noise.)"""
    stems = {stem for german in translations_used(question, passage_terms, dictionary)
             for stem in tokenize(german) if stem in passage_terms}
    if thesaurus is None:
        return stems
    untranslated = set()  # the translations of the words none of whose translations the passages use
    for word in english_words(question):
        translated = {stem for german in dictionary.translations(word) for stem in tokenize(german)}
        if translated.isdisjoint(passage_terms):
            untranslated |= translated
    if untranslated:  # one lookup: ``Thesaurus.used`` finds the base of every passage stem each time
        stems |= {p for words in thesaurus.used(sorted(untranslated), passage_terms).values() for p in words}
    return stems


def related_words(stems: Sequence[str], used: Collection[str], thesaurus: Thesaurus,
                  known: Callable[[Iterable[str]], Collection[str]]) -> dict[str, frozenset[str]]:
    """For each of a German question's ``stems`` that has any, the passages' stems (``used``) that say the same:
    another form of it or a synonym (``rag.lang.thesaurus``), and a compound's head ("quartalsumsatz" → umsatz,
    ``rag.lang.de.compound_parts`` with ``known``, the index's lookup of stems).

    Why the head: a compound is a kind of its head, and a sentence often says it in two words ("der Umsatz im
    Quartal" for "Quartalsumsatz"). Counted with the synonyms, with the selector retrained on one machine:
    XQuAD-de's held-out half contains gold 0.878 → 0.880, false abstention 0.036 → 0.034, ECE 0.030 → 0.018; our
    German set 0.748 → 0.766 correct, gold citation 0.860 → 0.878, false abstention 0.047 → 0.037."""
    found = thesaurus.used(stems, used)
    for stem in stems:
        if not stem[:1].isdigit() and (parts := compound_parts(stem, known)) and parts[-1] in used:
            found[stem] = found.get(stem, frozenset()) | {parts[-1]}
    return found


def question_view(question: str, weights: dict[str, float], unknown_idf: float,
                  compounds: Mapping[str, tuple[str, ...]] | None = None,
                  gloss: Mapping[str, float] | None = None,
                  knows: Callable[[Iterable[str]], Collection[str]] | None = None,
                  synonyms: Mapping[str, frozenset[str]] | None = None) -> QuestionView:
    """``compounds``: the question's compounds that no passage uses, split into parts that passages do use
    (``rag.lang.de.compound_parts``); the question then asks for the parts. ``gloss``: German stems (with their
    IDF) that an English question asks for (``english_gloss``): they count as the question's terms, not as its
    names; None: the question was not read with the dictionary. ``knows``: the index's lookup of stems
    (``_name_check``); the view's ``unknown_names`` and ``unmentioned`` come from one tagging of the question.
    ``synonyms``: for some of the question's stems, the passages' stems that are another form of them or a
    synonym (``rag.lang.thesaurus.Thesaurus.used``); None: the question was not read with the thesaurus."""
    compounds, glossed, gloss = compounds or {}, gloss is not None, gloss or {}

    def split(terms) -> set[str]:
        return {part for t in terms for part in compounds.get(t, (t,))}

    tokens = frozenset(split(tokenize(question))) | gloss.keys()
    # in sorted order: sums over it (coverage shares) then add up alike in every process, whatever order hash
    # randomisation gives the sets the weights come from (training is reproducible to the last bit)
    known = dict(sorted(({t: w for t, w in weights.items() if t in tokens} | dict(gloss)).items()))
    missing = [t for t in tokens if t not in known and not t[:1].isdigit()]
    total = sum(known.values()) + unknown_idf * len(missing)
    caps = frozenset(m.group(0).casefold() for m in _CAPITALISED.finditer(question))
    names = frozenset(t for m in _CAPITALISED.finditer(question) if m.start() > 0 for t in tokenize(m.group(0)))
    years = frozenset(YEAR.findall(question))
    specific = split(t for m in _HAS_CAPITAL.finditer(question) if m.start() > 0 for t in tokenize(m.group(0)))
    specific |= {t for t in tokens if t[:1].isdigit()}
    proper, unheard = _name_check(question, known, knows)
    return QuestionView(question, question_type(question), tokens, known,
                        unknown_idf * len(missing) / total if total else 0.0,
                        frozenset(m.group(0) for m in NUMBER.finditer(question)), years,
                        caps, names & known.keys(),
                        frozenset(quarter_periods(question, int(next(iter(years))) if len(years) == 1 else None)),
                        tuple(sorted((t, known.get(t, unknown_idf)) for t in specific)), _share(proper, unheard),
                        looks_english(question), glossed, tuple(unheard) if unheard == proper else (),
                        None if synonyms is None else
                        {t: (known.get(t, unknown_idf) / total, words) for t, words in sorted(synonyms.items())
                         if t in tokens and total})


def _coverage(q: QuestionView, tokens) -> float:
    """IDF share of the question's stems that ``tokens`` hold."""
    total = sum(q.weights.values())
    present = set(tokens)
    return sum(w for t, w in q.weights.items() if t in present) / total if total else 0.0


def _synonyms(q: QuestionView, tokens) -> float:
    """IDF share of the question's stems that ``tokens`` lack but hold in another form or as a synonym; NaN ("not
    measured": the model reads its training mean) for a question read without the thesaurus, so that a machine
    without it answers as the model does on average, not as if no question ever had a synonym."""
    if q.synonyms is None:
        return math.nan
    present = set(tokens)
    return sum(share for t, (share, words) in q.synonyms.items() if t not in present and not words.isdisjoint(present))


def _partial(q: QuestionView, tokens) -> float:
    """IDF share of question stems found only inside a longer word of the sentence (German compounds)."""
    total = sum(q.weights.values())
    if not total:
        return 0.0
    present = set(tokens)
    # a stem inside one of these words and not a word itself is inside a longer one (no word holds the separator)
    words = "\x00".join(u for u in present if len(u) > 4)
    hit = 0.0
    for t, w in q.weights.items():
        if len(t) >= 4 and t not in present and t in words:
            hit += w
    return hit / total


@lru_cache(maxsize=1 << 14)
def _stems(word: str) -> frozenset[str]:
    """The stems of one word (a capitalised word of a sentence: compared with the question's stems per candidate)."""
    return frozenset(tokenize(word))


def _proximity(q: QuestionView, tokens: Sequence[str]) -> float:
    """1 / (1 + the shortest token window holding every matched question stem, minus their count)."""
    positions = [(i, t) for i, t in enumerate(tokens) if t in q.weights]
    kinds = {t for _, t in positions}
    if len(kinds) < 2:
        return 0.0
    need, best, counts, left, have = len(kinds), len(tokens), {}, 0, 0
    for right, (i, t) in enumerate(positions):
        counts[t] = counts.get(t, 0) + 1
        have += counts[t] == 1
        while have == need:
            j, u = positions[left]
            best = min(best, i - j + 1)
            counts[u] -= 1
            have -= counts[u] == 0
            left += 1
    return 1.0 / (1.0 + best - need)


def specific_missing(q: QuestionView, info: SentenceInfo, tokens: Sequence[str], title_tokens) -> float:
    """IDF-weighted share of the question's specific terms (names and nouns after its first word, years, figures)
    that neither the quote nor its article's title holds; a year also counts as held when the sentence speaks about
    it ("dieses Jahr"). A near miss ("Wie viel will Amazon 2026 investieren?" over articles about Meta's 2026 and
    Amazon's 2025 plans) leaves a term missing from every candidate, even when each term occurs somewhere."""
    total = sum(w for _, w in q.specific)
    if not total:
        return 0.0
    present = {*tokens, *title_tokens, *(str(y) for y in info.time_years)}
    return sum(w for t, w in q.specific if not holds_term(t, present)) / total


def holds_term(term: str, present) -> bool:
    """Whether the stems ``present`` hold ``term``, also as the name a genitive s was added to ("Metas" → Meta)."""
    return term in present or (len(term) > 3 and term.endswith("s") and term[:-1] in present)


def time_match(q: QuestionView, info: SentenceInfo) -> float:
    """How the time a sentence speaks about fits the asked one: 1 the asked quarter (or, without one, year), -1
    another time, 0 no time said or none asked. Relative phrases ("im vergangenen Quartal") count as resolved by
    the article's date."""
    if q.periods:
        if q.periods & info.time_periods:
            return 1.0
        if info.time_periods:
            return -1.0
        # the asked quarter's year with no quarter said ("nach 3,74 Milliarden vor einem Jahr") does not say another
        return 0.0 if {int(p[:4]) for p in q.periods} & info.time_years or not info.time_years else -1.0
    if q.years:
        asked = {int(y) for y in q.years}
        return 1.0 if asked & info.time_years else -1.0 if info.time_years else 0.0
    return 0.0


def candidate_features(q: QuestionView, info: SentenceInfo, tokens: Sequence[str], prev_tokens, next_tokens,
                       dense: float, passage_score: float, passage_rank: int, passage_dense: float,
                       position: int, count: int, pair: bool, title_tokens: frozenset[str],
                       names: Collection[str] = (), beyond: bool = False) -> dict[str, float]:
    """Raw (not yet question-relative) features of one candidate; ``names``: the proper names the tagger finds in it
    (``ArticleSentences.names``; only for the ``NAME_KINDS`` of question); ``beyond``: it follows its passage
    (``_window``)."""
    wants = {t: float(q.kind == t) for t in ANSWER_TYPES}
    new_numbers = info.numbers - q.numbers
    new_years = info.years - q.years
    new_caps = [c for c in info.capitalised if c not in q.caps and q.tokens.isdisjoint(_stems(c))]
    content = [t for t in tokens if not t[:1].isdigit()]
    novelty = sum(t not in q.tokens for t in content) / len(content) if content else 0.0
    cov = _coverage(q, tokens)
    window = {*prev_tokens, *tokens, *next_tokens, *title_tokens}
    top_weight = max(q.weights.values(), default=1.0)
    missing_name = max((q.weights[t] / top_weight for t in q.names if t not in window), default=0.0)
    year_match = time_match(q, info)
    specific = specific_missing(q, info, tokens, title_tokens)
    f = {
        "dense": dense, "passage_score": passage_score, "passage_rank": 1.0 / (1.0 + passage_rank),
        "passage_dense": passage_dense, "coverage": cov,
        "coverage_prev": _coverage(q, prev_tokens), "coverage_next": _coverage(q, next_tokens),
        "coverage_window": _coverage(q, (*prev_tokens, *tokens, *next_tokens)),
        "partial": _partial(q, tokens), "proximity": _proximity(q, tokens), "novelty": novelty,
        "log_tokens": math.log1p(len(tokens)), "first": float(position == 0),
        "rel_position": position / max(count - 1, 1), "pair": float(pair), "anaphoric": float(info.anaphoric),
        "heading": float(info.heading), "question": float(info.question),
        "title_overlap": _coverage(q, title_tokens), "missing_name": missing_name, "specific_missing": specific,
        "year_match": year_match,
        **{f"wants_{t}": v for t, v in wants.items()},
        "new_number": float(bool(new_numbers - new_years)), "new_year": float(bool(new_years)),
        "has_month": float(info.has_month), "day_date": float(info.has_day_date), "unit": float(info.has_unit),
        "new_caps": min(len(new_caps), 5) / 5, "cap_pairs": min(info.cap_pairs, 3) / 3,
        "places": min(info.places, 3) / 3, "beyond": float(beyond), "synonyms": _synonyms(q, tokens),
    }
    f["amount_x_number"] = wants["amount"] * f["new_number"]
    f["amount_x_unit"] = wants["amount"] * f["unit"] * f["new_number"]
    f["date_x_year"] = wants["date"] * f["new_year"]
    f["date_x_month"] = wants["date"] * f["has_month"]
    f["date_x_day"] = wants["date"] * f["day_date"]
    f["person_x_pairs"] = wants["person"] * f["cap_pairs"]
    f["person_x_caps"] = wants["person"] * f["new_caps"]
    f["place_x_places"] = wants["place"] * f["places"]
    f["place_x_caps"] = wants["place"] * f["new_caps"]
    f["other_x_caps"] = wants["other"] * f["new_caps"]
    f["reason_x_len"] = wants["reason"] * f["log_tokens"]
    # A name the question does not hold, as the tagger tells names from German nouns (all capitalised): "Carsten
    # Spohr", not "Gewinn" or "Milliarden Euro", answers "Wer ist Konzernchef der Lufthansa?"
    new_names = min(sum(q.tokens.isdisjoint(_stems(n)) for n in names), 3) / 3
    f["person_x_names"] = wants["person"] * new_names
    f["place_x_names"] = wants["place"] * new_names
    return f


# The question-relative columns: (raw column, its gap to the best candidate, its rank feature or None).
RELATIVE = (("dense", "dense_gap", "dense_rank"), ("coverage", "coverage_gap", "coverage_rank"),
            ("passage_score", "passage_gap", None))


def gaps_and_ranks(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each value's gap to the largest, and its rank as ``1 / (1 + rank)`` (ties in their order)."""
    ranks = np.empty(len(values), np.int64)
    ranks[np.argsort(-values, kind="stable")] = np.arange(len(values))
    return values - (values.max() if len(values) else 0.0), 1.0 / (1.0 + ranks)


def relative(rows: list[dict[str, float]]) -> None:
    """Add the question-relative features (gaps to the best candidate, ranks) in place."""
    for key, gap, rank in RELATIVE:
        gaps, ranks = gaps_and_ranks(np.array([r[key] for r in rows], np.float64))
        for r, g, k in zip(rows, gaps, ranks):
            r[gap] = float(g)
            if rank:
                r[rank] = float(k)


def sentences_view(X: np.ndarray) -> np.ndarray:
    """One question's candidate rows with their question-relative columns (gaps to the best, ranks) measured among
    the sentences themselves (``own_sentences``), as they were before context pairs were candidates.

    Why: what the question-level decision reads of the best sentences must not move because longer context pairs
    stand beside them (a pair's higher coverage pushes every sentence's coverage rank down)."""
    X = np.array(X, np.float64, copy=True)
    keep = own_sentences(X)
    if not keep.any():
        return X
    col = FEATURES.index
    for key, gap, rank in RELATIVE:
        gaps, ranks = gaps_and_ranks(X[keep, col(key)])
        X[keep, col(gap)] = gaps
        if rank:
            X[keep, col(rank)] = ranks
    return X


class ArticleSentences:
    """Per-article sentence spans and their infos, and per chunk which of its article's sentences it holds, cached
    (articles and chunks recur across questions)."""

    def __init__(self, index) -> None:
        self.index = index
        self._cache: dict[str, list[SentenceInfo]] = {}
        self._titles: dict[str, frozenset[str]] = {}
        self._joined: dict[tuple[str, int], SentenceInfo] = {}
        self._chunks: dict[int, tuple[int, list[tuple[int, int]]]] = {}
        self._names: dict[tuple[str, int], frozenset[str]] = {}
        self._words: dict[str, frozenset[str]] = {}

    def of(self, doc_id: str) -> list[SentenceInfo]:
        infos = self._cache.get(doc_id)
        if infos is None:
            article = self.index.articles[doc_id]
            text = article.text
            infos = self._cache[doc_id] = carried_time(text, [sentence_info(text, a, b, article)
                                                              for a, b in sentence_spans(text) or [(0, len(text))]])
        return infos

    def names(self, doc_id: str, position: int) -> frozenset[str]:
        """The proper names the tagger finds in the article's sentence ``position`` (tagged once, on first need:
        about 4 ms a sentence)."""
        found = self._names.get((doc_id, position))
        if found is None:
            info = self.of(doc_id)[position]
            found = self._names[doc_id, position] = frozenset(
                pos.proper_names(self.index.articles[doc_id].text[info.start:info.end]))
        return found

    def title(self, doc_id: str) -> frozenset[str]:
        t = self._titles.get(doc_id)
        if t is None:
            t = self._titles[doc_id] = frozenset(tokenize(self.index.articles[doc_id].title))
        return t

    def words(self, doc_id: str) -> frozenset[str]:
        """The stems of the whole article, its title included."""
        found = self._words.get(doc_id)
        if found is None:
            stems = frozenset(t for info in self.of(doc_id) for t in info.tokens)
            found = self._words[doc_id] = stems | self.title(doc_id)
        return found

    def joined(self, doc_id: str, position: int) -> SentenceInfo:
        """Sentence ``position`` (> 0) of the article as quoted with its predecessor (``joined_time``)."""
        info = self._joined.get((doc_id, position))
        if info is None:
            infos = self.of(doc_id)
            info = self._joined[doc_id, position] = joined_time(infos[position - 1], infos[position])
        return info

    def in_chunk(self, row: int) -> tuple[int, list[tuple[int, int]]]:
        """How many sentences chunk ``row`` splits into, and (k, position) for each of them that is its article's
        sentence ``position`` (one cut differently, as a chunk's first may be, has none)."""
        found = self._chunks.get(row)
        if found is None:
            chunk = self.index.chunks[row]
            spans = sentence_spans(chunk.text) or [(0, len(chunk.text))]
            by_start = {info.start: i for i, info in enumerate(self.of(chunk.doc_id))}
            found = self._chunks[row] = (len(spans), [(k, by_start[chunk.start + a]) for k, (a, _) in enumerate(spans)
                                                      if chunk.start + a in by_start])
        return found


def chunk_rows(index) -> dict[str, int]:
    return {c.chunk_id: i for i, c in enumerate(index.chunks)}


def sentence_vector_sims(index, row: int, query: np.ndarray, count: int) -> np.ndarray:
    """The cosine of the query with the sentence-pair vector of each of the chunk's ``count`` sentences."""
    if index.sentences is None:
        return np.zeros(count, np.float32)
    vectors = index.sentences.of(row)
    sims = vectors.astype(np.float32) @ query.reshape(-1) if len(vectors) else np.zeros(0, np.float32)
    if len(sims) != count:
        sims = np.resize(sims, count) if len(sims) else np.zeros(count, np.float32)
    return sims


def _window(index, sentences: ArticleSentences, row: int,
            query: np.ndarray) -> list[tuple[int, int, np.ndarray, bool]]:
    """(k, position, sims, beyond) for each of chunk ``row``'s sentences (k-th in its chunk, ``position`` in its
    article, ``sims``: its chunk's sentence cosines), then the same for the article's sentence right after the chunk,
    read from the next chunk.

    Why: a chunk boundary can fall right before the answer, and the next chunk, on other things mostly, is not
    retrieved ("… ein „wirklich großes Jahr“ voraus." ends a chunk, "Zwischen 60 und 65 Milliarden Dollar sollen in
    diesem Jahr … fließen" opens the next)."""
    count, positions = sentences.in_chunk(row)
    sims = sentence_vector_sims(index, row, query, count)
    found = [(k, position, sims, False) for k, position in positions]
    following = row + 1
    if positions and following < len(index.chunks) and index.chunks[following].doc_id == index.chunks[row].doc_id:
        after = positions[-1][1] + 1
        count, positions = sentences.in_chunk(following)
        for k, position in positions:
            if position == after:
                found.append((k, position, sentence_vector_sims(index, following, query, count), True))
    return found


def carried_time(text: str, infos: list[SentenceInfo]) -> list[SentenceInfo]:
    """The sentences of one article, each that names no time speaking about the quarter of the sentence before it
    in its paragraph ("Meta konnte sich im abgelaufenen Quartal über einen Rekordumsatz freuen. Die Einnahmen
    stiegen um 21 Prozent … Der Nettogewinn fiel mit 20,8 Milliarden Dollar …": that quarter's profit).

    Why quarters only: a report on a quarter goes on about it sentence after sentence; a year carried so cost an
    XQuAD-de answer ("Was legt ein Bericht … aus dem Jahr 2013 … nahe?" was declined). Measured with the selector
    as trained before (retrained on it, the answerability threshold moved and XQuAD-de's false abstention rose
    to 0.063): German set false abstention 0.047 → 0.037, gold citation 0.888 → 0.897, correct unchanged (one
    quarter's profit found, one comparison's part taken from a quarter's revenue sentence instead of its
    investment sentence); XQuAD-de unchanged."""
    carried = list(infos)
    for i in range(1, len(carried)):
        prev, info = carried[i - 1], carried[i]
        if (not info.time_years and not info.time_periods and prev.time_periods
                and "\n" not in text[prev.end:info.start]):
            carried[i] = replace(info, time_years=prev.time_years, time_periods=prev.time_periods)
    return carried


def joined_time(prev: SentenceInfo, info: SentenceInfo) -> SentenceInfo:
    """A sentence as quoted with its predecessor: it speaks about the times both name ("Im vergangenen Quartal stieg
    der Umsatz … Der Quartalsgewinn legte … zu" is about that quarter, although its second sentence names none)."""
    return replace(info, time_years=prev.time_years | info.time_years,
                   time_periods=prev.time_periods | info.time_periods)


def build_candidates(index, sentences: ArticleSentences, rows: dict[str, int], q: QuestionView,
                     query: np.ndarray, hits: Sequence, passages: int) -> tuple[list[Candidate], list[dict]]:
    """Candidates of the best ``passages`` hits, deduplicated by article span, with their feature dicts."""
    found: dict[tuple[str, int, bool], tuple[Candidate, dict]] = {}
    for rank, hit in enumerate(hits[:passages]):
        row = rows.get(hit.chunk_id)
        if row is None:
            continue
        infos = sentences.of(hit.doc_id)
        title = sentences.title(hit.doc_id)
        for k, position, sims, beyond in _window(index, sentences, row, query):
            info = infos[position]
            next_tokens = infos[position + 1].tokens if position + 1 < len(infos) else ()
            # the sentence, and with its predecessor too: the selector learns when the context holds the answer
            for pair in (False, True) if position > 0 else (False,):
                start = infos[position - 1].start if pair else info.start
                if (hit.doc_id, start, pair) in found:
                    continue
                if pair:
                    prev = infos[position - 1]
                    tokens, said = (*prev.tokens, *info.tokens), sentences.joined(hit.doc_id, position)
                    before = infos[position - 2].tokens if position > 1 else ()
                    dense = float(sims[k - 1]) if k > 0 else float(sims[k])
                else:
                    tokens, said, dense = info.tokens, info, float(sims[k])
                    before = infos[position - 1].tokens if position > 0 else ()
                names = ((sentences.names(hit.doc_id, position - 1) if pair else frozenset())
                         | sentences.names(hit.doc_id, position)) if q.kind in NAME_KINDS else ()
                f = candidate_features(q, said, tokens, before, next_tokens, dense, float(hit.score), rank,
                                       float(hit.dense_score or 0.0), position, len(infos), pair, title, names,
                                       beyond)
                found[hit.doc_id, start, pair] = (Candidate(hit.doc_id, start, info.end, position, rank, pair,
                                                            f["year_match"]), f)
    cands = [c for c, _ in found.values()]
    feats = [f for _, f in found.values()]
    relative(feats)
    return cands, feats


def matrix(feats: list[dict]) -> np.ndarray:
    return np.array([[f[name] for name in FEATURES] for f in feats], np.float64).reshape(-1, len(FEATURES))


# Question-level signals for "do the articles hold an answer at all": raw values (a cosine, a coverage share, the
# share of the question's weight the index never uses), not relative to the other candidates, so that a question
# about an absent article does not look answerable just because one of its candidates beats the others.
QUESTION_FEATURES = ("max_dense", "top_dense", "bm25_per_idf", "max_coverage", "max_window", "max_partial",
                     "unknown", "log_terms", "min_missing_name", "min_specific_missing", "year_unseen", "top_logit",
                     "margin", "top_missing_name", "top_specific_missing", "top_year_match", "top_window",
                     *(f"wants_{t}" for t in ANSWER_TYPES), "dense_lift", "dense_z", "bm25_lift", "unknown_names",
                     "max_related")
# The question's background in its corpus: the passages it retrieves at ranks 11-40.
STANDOUT_RANKS = 40
# Question-level features read off the selector's best candidate: a near miss ("Wie viel investiert Amazon?" where
# the best sentence is about another company) shows in what the best sentence lacks.
TOP_FEATURES = {"top_missing_name": "missing_name", "top_specific_missing": "specific_missing",
                "top_year_match": "year_match", "top_window": "coverage_window"}


def standout(scores: Sequence[float], passages: int) -> tuple[float, float]:
    """How far the best retrieval score stands above the question's background in this corpus (its scores at ranks
    11-40): the lift, and the lift in background standard deviations; NaN for both when the index has fewer than
    ``STANDOUT_RANKS`` passages (``passages``).

    Why: a raw cosine or BM25 score means different things in different corpora (every passage of a folder of news
    about one company is close to every question about it). An answerable question has a passage that stands out
    of its corpus; a question about an article that is not indexed has not. With these three features the
    answerability classifier separates such questions better. Removed-article questions declined, without → with
    them: out-of-fold tuning questions 0.916 → 0.922 at 3 % false abstention, 0.934 → 0.941 at 4 %; XQuAD-de's
    held-out half with articles 37-48 removed from the index 0.845 → 0.864 at 3 %, 0.875 → 0.906 at 4 %.
    Ranks the search did not return in an index of enough passages score 0 (BM25 returns only passages that
    match a term; a dense search returns all ``STANDOUT_RANKS``).

    Why NaN for a small index: it has no background to stand out of. Filled in with its own lowest score, as
    before, a folder of three short articles (6 passages) had a background of one repeated value, a standard
    deviation of 0 and a z of 70-100 against 12 on average in training, which made the answerability
    classifier answer every question, at confidence 0.99. NaN stands for "not measured": ``Linear`` reads it
    as the training mean, so the feature adds nothing and the other features decide."""
    if passages < STANDOUT_RANKS:
        return math.nan, math.nan
    v = np.sort(np.asarray(scores, np.float64))[::-1][:STANDOUT_RANKS]
    v = np.pad(v, (0, STANDOUT_RANKS - len(v)))
    background = v[10:]
    lift = float(v[0] - background.mean())
    return lift, lift / (float(background.std()) + 1e-3)


def question_features(q: QuestionView, X: np.ndarray, logits: np.ndarray, hits: Sequence,
                      dense_scores: Sequence[float], bm25_scores: Sequence[float], passages: int) -> np.ndarray:
    """The ``QUESTION_FEATURES`` row of a question whose candidates have features ``X`` and selector ``logits``;
    ``dense_scores``/``bm25_scores``: its best ``STANDOUT_RANKS`` passage scores over the whole index of
    ``passages`` passages (``standout``)."""
    col = {name: i for i, name in enumerate(FEATURES)}
    idf = sum(q.weights.values())
    first = hits[0] if hits else None
    full, X = X, X[own_sentences(X)]
    some = len(X) > 0
    dense_lift, dense_z = standout(dense_scores, passages)
    values = {
        "max_dense": float(X[:, col["dense"]].max()) if some else 0.0,
        "top_dense": float(first.dense_score or 0.0) if first else 0.0,
        "bm25_per_idf": float(first.bm25_score or 0.0) / idf if first and idf else 0.0,
        "max_coverage": float(X[:, col["coverage"]].max()) if some else 0.0,
        "max_window": float(X[:, col["coverage_window"]].max()) if some else 0.0,
        "max_partial": float((X[:, col["coverage"]] + X[:, col["partial"]]).max()) if some else 0.0,
        "unknown": q.unknown_share, "log_terms": math.log1p(len(q.tokens)),
        "min_missing_name": float(X[:, col["missing_name"]].min()) if some else 1.0,
        "min_specific_missing": float(X[:, col["specific_missing"]].min()) if some else 1.0,
        "year_unseen": float(bool(q.years) and not (some and (X[:, col["year_match"]] > 0).any())),
        **{f"wants_{t}": float(q.kind == t) for t in ANSWER_TYPES},
        "dense_lift": dense_lift, "dense_z": dense_z,
        "bm25_lift": standout(bm25_scores, passages)[0] / idf if idf else 0.0,
        "unknown_names": q.unknown_names,
        "max_related": float((X[:, col["coverage"]] + X[:, col["synonyms"]]).max()) if some else 0.0,
    }
    row = np.array([values.get(name, 0.0) for name in QUESTION_FEATURES], np.float64)
    return question_features_from(row, full, logits)


def own_sentences(X: np.ndarray) -> np.ndarray:
    """The rows of ``X`` that are a sentence alone or a sentence that leans on the one before, not a sentence
    quoted with its predecessor for context.

    Why: the question-level decision reads how well the best candidates cover the question; a pair covers more of
    it because it is longer, so counting context pairs makes unanswerable questions look answerable (measured: the
    German set's unanswerable questions declined 0.62 -> 0.50). A sentence beyond its passage (``_window``) is no
    evidence that the passages hold an answer either."""
    col = FEATURES.index
    if not len(X):
        return np.zeros(0, bool)
    return ((X[:, col("pair")] == 0) | (X[:, col("anaphoric")] > 0)) & (X[:, col("beyond")] == 0)


def question_features_from(row: np.ndarray, X: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """``row`` with its selector-dependent columns (best logit, its lead, what the best candidate lacks) filled in
    from the candidates' own sentences; training fills them again from out-of-fold logits."""
    keep = own_sentences(X)
    X, logits = X[keep], np.asarray(logits)[keep]
    row = row.copy()
    where = {name: i for i, name in enumerate(QUESTION_FEATURES)}
    if not len(X):
        row[where["top_logit"]], row[where["margin"]] = -10.0, 0.0
        return row
    ordered = np.sort(logits)[::-1]
    row[where["top_logit"]] = ordered[0]
    row[where["margin"]] = ordered[0] - ordered[1] if len(ordered) > 1 else 5.0
    best = int(np.argmax(logits))
    for name, source in TOP_FEATURES.items():
        row[where[name]] = X[best, FEATURES.index(source)]
    return row


