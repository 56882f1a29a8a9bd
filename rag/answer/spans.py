"""The short answer inside a quote: the shortest verbatim span of the chosen sentence that answers the question
("115 bis 135 Milliarden US-Dollar", "Susan Li", "1862", "analog").

Why learned: hand rules for "which span answers" were written against our own questions and did not carry over to
other German text. Here every token n-gram of the quote (up to ``MAX_TOKENS`` tokens, within clause punctuation) is a
candidate; typed shapes (amounts with units and ranges, dates and years of any century, capitalised names with
particles) are flags on those candidates, not the only choices, so non-typed answers stay reachable. A conditional
logit (a logistic regression whose candidates of one quote share a softmax) scores them on domain-general features:
what the question asks for against what the span is, overlap with the question's words, distance to them in the
quote, noun-phrase boundaries, length, shape, position, and parts of speech (``rag.lang.pos``: the word classes at
the span's edges and around it, its head noun, name or number against the question's kind, how it lies on the
quote's noun phrases), and what e5, fine-tuned to find answers, reads in the quote with the question beside it
(``rag.answer.reader``: the logits that an answer starts or ends at the span's edges, inside it and next to it;
gold-sentence token F1 0.487 → 0.616 cross-validated on XQuAD-de's tuning half, 0.452 → 0.596 on the held-out
half). The parts of speech are features, not a filter: keeping only spans that neither begin nor end on a function
word or verb dropped the gold span from the candidates of 8 % of XQuAD-de's tuning questions (0.924 → 0.835) and cut
cross-validated EM from 0.332 to 0.315. The span chosen is the one with the highest expected token F1 among the
plausible ones (``expected_f1``). The weights live as readable JSON in
``rag/answer/models/span_model.json`` (trained by ``rag.eval.span_training.train_span_model``); scoring is numpy
only, no learning library at answer time.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from rag.answer.reader import Reader, Reading
from rag.ingest.sentences import sentence_spans
from rag.lang import de, pos

MODEL_PATH = Path(__file__).parent / "models" / "span_model.json"
MAX_TOKENS = 8
# Only spans at least this share as probable as the best one may be chosen by expected F1, so the answer stays a
# likely answer rather than a long span that overlaps several ("Berlin von Werner von Siemens"). Chosen on XQuAD-de's
# tuning half: EM 0.312 and F1 0.459 there, against 0.291/0.463 with no such floor and 0.324/0.427 by probability alone.
PLAUSIBLE = 0.25
# Tokens on each side of a span in which the question's words are counted.
WINDOW = 5

# A token: a clock time ("3:08") or a score ("3:0"), or letters/digits joined by inner hyphens, dots, commas, slashes
# or degree signs ("US-Dollar", "14,3", "5.100", "28,5°E", "22-mal"), or a lone currency/percent sign.
_TOKEN = re.compile(r"\d{1,2}:\d{1,2}(?!\d)|[^\W_]+(?:[-.,'’/°][^\W_]+)*[%°]?|[%€$£]")
# Punctuation that closes a clause: a span never crosses it (a comma is allowed and counted; a dot only after a
# word that is no abbreviation or ordinal, so "18. September" and "Mrd. Dollar" stay joinable). Nor does it cross
# a line break: a quote of two lines (a heading and the sentence after it) gave "ein\n30. Oktober 2025".
_CLAUSE_BREAK = re.compile(r"[;:()\[\]–—\"„“”»«!?\n]")

# Word knowledge from rag.lang.de, gathered for the token flags.
_MONTHS = frozenset(de.MONTH_NUMBERS) | frozenset(de.ENGLISH_MONTHS)
_NUMBER_WORDS = (frozenset(de.NUMBER_WORDS) | frozenset(de.ENGLISH_NUMBER_WORDS)) - de.ARTICLES
_STOP = de.stopwords() | de.ARTICLES | de.PREPOSITIONS | frozenset(
    "the of and or is are was were did does do how what who which when where why".split())
_ABBREVIATIONS = de.ABBREVIATIONS | frozenset("z b d h u a".split())
# A span never ends on these: an answer does not stop at an article, a preposition or a conjunction.
_OPEN_ENDS = de.ARTICLES | de.PREPOSITIONS | frozenset("und oder sowie sich dass daß ob wie sein seine ihre".split())
KINDS = tuple(kind for kind, _ in de.QUESTION_FORMS) + ("other",)
# The word before a span says much about what it is ("in Edinburgh", "von Eero Saarinen", "ist ein Fachmagazin");
# these groups of words before it are features, and for the typed kinds of question also crossed with the kind
# ("im 18. Jahrhundert" for "wann", "von Eero Saarinen" for "wer": +0.01 token F1 in cross-validation on the
# tuning half; crossed with every kind they overfit).
_BEFORE_GROUPS = {**de.PREPOSITION_GROUPS, "copula": de.COPULAS, "article": de.ARTICLES, "comma": frozenset(",")}
_BEFORE = {word: group for group, words in _BEFORE_GROUPS.items() for word in words}
_TYPED_KINDS = ("when", "who", "where", "count")
# Words a date may hold besides months, numbers and range words ("im Jahr 1862", "Mitte 1947").
_DATE_WORDS = frozenset(("im", "jahr", "jahre", "anfang", "ende", "mitte"))


def _stem(word: str) -> str:
    return de.stem(word.lower())


def is_explanation(question: str) -> bool:
    """"Warum …?", "Wie funktioniert …", "Why …": the answer is a reason or a process, not a short fact."""
    return bool(de.EXPLANATION_PATTERN.search(question))


def wants_short_answer(question: str) -> bool:
    """Whether a span can answer ``question``: not for a reason or a process (``is_explanation``), nor for a "yes
    or no" (``rag.lang.pos.asks_yes_no``)."""
    return not is_explanation(question) and not pos.asks_yes_no(question)


def _asking(question: str) -> tuple[str, int, int]:
    """The kind of answer wanted and where its question words stand: the earliest match wins."""
    best: tuple[int, int, str, int] | None = None
    for order, (kind, pattern) in enumerate(de.QUESTION_FORMS):
        match = pattern.search(question)
        if match and (best is None or (match.start(), order) < best[:2]):
            best = (match.start(), order, kind, match.end())
    return (best[2], best[0], best[3]) if best else ("other", 0, 0)


def question_kind(question: str) -> str:
    """What kind of answer the question wants (one of ``KINDS``), from the earliest question word in it."""
    return _asking(question)[0]


@dataclass(frozen=True)
class Span:
    """A verbatim piece of a quote: ``quote[start:end] == text``; ``score`` is the model's probability."""

    start: int
    end: int
    text: str
    score: float


@dataclass(frozen=True)
class SpanModel:
    """Weights of a conditional logit over ``features`` (readable JSON): the candidates of one quote compete in one
    softmax, so a score is the probability that this span is the answer, given that the quote holds one.
    ``threshold``: below this best probability no short answer is given."""

    features: tuple[str, ...]
    weights: np.ndarray
    threshold: float

    def scores(self, matrix: np.ndarray) -> np.ndarray:
        logits = matrix @ self.weights
        odds = np.exp(logits - logits.max())
        return odds / odds.sum()


def load_span_model(path: Path = MODEL_PATH) -> SpanModel:
    """The trained scorer from its JSON file (written by ``rag.eval.span_training``)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    features = tuple(data["features"])
    if features != FEATURES:
        raise ValueError(f"{path} was trained on other features; retrain it with `rag train-answerer`")
    return SpanModel(features, np.array([data["weights"][name] for name in features]), float(data["threshold"]))


@lru_cache(maxsize=1)
def default_span_model() -> SpanModel:
    return load_span_model(MODEL_PATH)


@dataclass(frozen=True)
class _Token:
    start: int
    end: int
    text: str
    lower: str
    stem: str
    cap: bool
    digit: bool
    number: bool
    month: bool
    year: bool
    unit: bool
    scale: bool
    stop: bool
    gap: str  # the characters between the previous token and this one


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    previous_end = 0
    for match in _TOKEN.finditer(text):
        word = match.group(0)
        lower = word.lower()
        digit = any(map(str.isdigit, word))
        tokens.append(_Token(
            start=match.start(), end=match.end(), text=word, lower=lower, stem=_stem(word), cap=word[:1].isupper(),
            digit=digit, number=digit or lower in _NUMBER_WORDS or bool(de.CARDINAL_PATTERN.fullmatch(lower)),
            month=lower in _MONTHS,
            year=word.isdigit() and len(word) in (3, 4) and 100 <= int(word) <= 2100,
            unit=lower in de.MEASURE_UNITS or lower.endswith(de.MEASURE_ENDINGS), scale=lower in de.SCALES,
            stop=lower in _STOP, gap=text[previous_end:match.start()]))
        previous_end = match.end()
    return tokens


@dataclass(frozen=True)
class _Question:
    kind: str
    stems: frozenset[str]
    words: frozenset[str]
    head: str | None  # stem of the noun after "welche"/"wie viele" ("Wie viele Punkte" → "punkt")
    before: frozenset[str]  # stems of the two content words before the question word ("Summe wovon")
    after: frozenset[str]  # … and after it ("Wer führte …": an answer often stands right before "führte")


def _question(question: str) -> _Question:
    words = [t.group(0) for t in _TOKEN.finditer(question)]
    content = [w for w in words if w.lower() not in _STOP]
    head = de.asked_noun(question)
    kind, start, end = _asking(question)
    before = [w for w in _TOKEN.findall(question[:start]) if w.lower() not in _STOP][-2:]
    after = [w for w in _TOKEN.findall(question[end:]) if w.lower() not in _STOP][:2]
    return _Question(kind=kind, stems=frozenset(_stem(w) for w in content),
                     words=frozenset(w.lower() for w in content), head=_stem(head) if head else None,
                     before=frozenset(_stem(w) for w in before), after=frozenset(_stem(w) for w in after))


# What a span is; each also crossed with the question's kind ("when_x_year"). The order is the model file's.
_TYPES = ("digit", "number_only", "year", "month", "unit", "amount", "date", "name", "cap_first", "lower_all",
          "noun_end", "len1", "len2", "len3plus")
# Distance to the question's words and the question's share around the span matter differently per kind of question
# (a date stands right beside its event's words, a "what" answer further away): crossed with the kind, +0.005 token F1
# in cross-validation on the tuning half.
_KIND_SCALED = ("dist_log", "window_match")
_BASE = ("overlap_frac", "related_frac", "head_compound", "aligned_before", "aligned_after",
         "ends_clause", "noun_follows", "modifier_before", "starts_inflected_lower", "any_overlap", "all_overlap",
         "dist_log", "no_match", "near_left", "near_right",
         "prev_is_q", "next_is_q", "next_is_head", "has_head", "prev_preposition", "prev_article", "prev_comma",
         "next_comma",
         "starts_article", "starts_prep", "starts_stop", "ends_stop", "stop_frac", "commas", "in_parens",
         "sentence_start", "rel_pos", "len_log", "chars_log", "len5_6", "len7plus", "acronym", "maximal_name",
         "maximal_number", "quote_len_log", "matches_log", "between_matches", "head_before", "window_match",
         "window_names", "asked_left", "asked_right")
# Parts of speech (rag.lang.pos): the word classes of the span's first and last word and of its neighbours; its
# head (the last noun, name or number in it) crossed with the question's kind ("Wer" wants a name, "Wie viele" a
# number, "Welche" a noun); and how it lies on the quote's noun phrases (runs of articles, adjectives, numbers,
# nouns and names): the whole phrase, the phrase without its article, a phrase's tail (an apposition's name, the head
# noun without its adjectives), cut inside a phrase, or over whole phrases and more.
_HEAD_CLASSES = tuple(sorted(pos.HEADS)) + ("none",)
_PHRASE_FITS = ("np_exact", "np_core", "np_tail", "np_cut_start", "np_cut_end", "np_over", "np_none")
_POS_FEATURES = tuple(f"{where}_{cls}" for where in ("first", "last", "prev", "next") for cls in pos.CLASSES) + tuple(
    f"head_{cls}" for cls in _HEAD_CLASSES) + tuple(
    f"{kind}_head_{cls}" for kind in KINDS for cls in _HEAD_CLASSES) + _PHRASE_FITS + ("has_verb",)
# The reader's logits (``rag.answer.reader``) that an answer starts at the span's first word and ends at its last;
# the highest that it starts (ends) at a later (earlier) word inside the span, and that it starts right after the
# span (ends right before it): a span cut too long or too short shows there (cross-validated token F1 0.507 -> 0.512
# with the frozen reader of the time, against its start and end alone).
_READER_FEATURES = ("reader_start", "reader_end", "reader_start_inside", "reader_end_inside", "reader_start_after",
                    "reader_end_before")
_OUTSIDE = -10.0  # the logit standing for "no such word" (below any the reader gives: about -5 at the lowest)
FEATURES = _BASE + tuple(f"type_{t}" for t in _TYPES) + tuple(
    f"{kind}_x_{t}" for kind in KINDS for t in _TYPES) + tuple(f"after_{group}" for group in _BEFORE_GROUPS) + tuple(
    f"{kind}_after_{group}" for kind in _TYPED_KINDS for group in _BEFORE_GROUPS) + tuple(
    f"{kind}_x_{name}" for kind in KINDS for name in _KIND_SCALED) + _POS_FEATURES + _READER_FEATURES
_INDEX = {name: k for k, name in enumerate(FEATURES)}


@dataclass(frozen=True)
class Candidate:
    """One candidate span of a quote, by token and character offsets."""

    first: int
    last: int  # exclusive, in tokens
    start: int
    end: int


def _related(word: str, stem: str, asked: "_Question") -> float:
    """1 for a question word (same word or stem), 0.5 for a German compound relative ("Rheinschlucht" for
    "Schlucht", "Einrichtung" for "eingerichtet"), else 0."""
    if stem in asked.stems or word in asked.words:
        return 1.0
    if len(word) >= 5 and any(len(w) >= 5 and (word.endswith(w) or w.endswith(word) or word[:5] == w[:5])
                              for w in asked.words):
        return 0.5
    return 0.0


def _breaks(tokens: list[_Token], k: int) -> bool:
    """Whether clause punctuation stands between token ``k - 1`` and token ``k``."""
    gap = tokens[k].gap
    if _CLAUSE_BREAK.search(gap):
        return True
    previous = tokens[k - 1]
    initial = len(previous.text) == 1 and previous.cap  # "John C. Messenger", "E. I. du Pont"
    return "." in gap and not (previous.digit or initial or previous.lower in _ABBREVIATIONS)


def _clause_breaks(tokens: list[_Token]) -> np.ndarray:
    """``_breaks`` before every token, computed once per quote rather than once per candidate; n + 1 entries, the
    first (nothing before the first token) and the last (no token after the quote) False."""
    return np.array([k > 0 and _breaks(tokens, k) for k in range(len(tokens))] + [False], dtype=bool)


def _flags(tokens: list[_Token], field: str) -> np.ndarray:
    """One boolean field of the tokens (``"cap"``, ``"stop"``, …) as an array, to compute features for all
    candidates at once."""
    return np.array([getattr(t, field) for t in tokens], dtype=bool)


def _words_in(tokens: list[_Token], words: frozenset[str]) -> np.ndarray:
    """Per token, whether its lower-case form is one of ``words``."""
    return np.array([t.lower in words for t in tokens], dtype=bool)


def _prefix_sums(values: np.ndarray) -> np.ndarray:
    """``sums[k]`` is the sum of ``values[:k]``, so the sum over tokens ``i`` to ``j`` is ``sums[j] - sums[i]``.
    The values summed are flags and multiples of 0.5, so these sums are exact, as the sums over slices were."""
    return np.concatenate([[0], np.cumsum(values)])


def _nearest(flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each position ``k`` from 0 to n: the last flagged token before ``k`` (-1 if none), and the first flagged
    token at or after ``k`` (n if none)."""
    n = len(flags)
    at = np.arange(n)
    before = np.concatenate([[-1], np.maximum.accumulate(np.where(flags, at, -1))])
    after = np.concatenate([np.minimum.accumulate(np.where(flags, at, n)[::-1])[::-1], [n]])
    return before, after


@dataclass(frozen=True)
class _Bounds:
    """The candidates' token bounds as arrays (``first``, and ``last`` exclusive) over a quote of ``n`` tokens.
    Every feature is computed for all candidates at once from per-token arrays: candidate by candidate in Python
    the features cost about 14 ms a question, for some hundred candidates."""

    first: np.ndarray
    last: np.ndarray
    n: int

    @property
    def size(self) -> np.ndarray:
        return self.last - self.first

    def count_in(self, values: np.ndarray, lows: np.ndarray, highs: np.ndarray) -> np.ndarray:
        """The sum of a per-token value (a flag counts 1) over tokens ``lows`` to ``highs`` (exclusive), both
        clipped to the quote: a window beside a candidate may reach past the quote's start or end."""
        sums = _prefix_sums(values)
        # np.minimum/np.maximum rather than np.clip, which costs several times more on arrays this small
        return sums[np.minimum(np.maximum(highs, 0), self.n)] - sums[np.minimum(np.maximum(lows, 0), self.n)]

    def count(self, values: np.ndarray) -> np.ndarray:
        """The sum of a per-token value over each candidate's own tokens."""
        sums = _prefix_sums(values)
        return sums[self.last] - sums[self.first]

    def any(self, flags: np.ndarray) -> np.ndarray:
        return self.count(flags) > 0

    def all(self, flags: np.ndarray) -> np.ndarray:
        return self.count(flags) == self.size

    def previous(self, values: np.ndarray, none: object = False) -> np.ndarray:
        """The value of the token before each candidate; ``none`` for a candidate that starts the quote (index -1
        picks the value appended)."""
        return np.append(values, none)[self.first - 1]

    def following(self, values: np.ndarray, none: object = False) -> np.ndarray:
        """The value of the token after each candidate; ``none`` for a candidate that ends the quote."""
        return np.append(values, none)[self.last]


def _candidate_bounds(tokens: list[_Token], breaks: np.ndarray) -> _Bounds:
    """Every token n-gram of up to ``MAX_TOKENS`` tokens that crosses no clause punctuation, does not end on an
    article, preposition or conjunction (``_OPEN_ENDS``) and is not all stopwords; ordered by first token, then
    length."""
    n = len(tokens)
    # a span starting at token i may run up to the first clause break after i (or the quote's end)
    reach = _nearest(breaks[:n])[1][1:]
    first = np.repeat(np.arange(n), MAX_TOKENS)
    last = first + np.tile(np.arange(1, MAX_TOKENS + 1), n)
    within = last <= reach[first]
    first, last = first[within], last[within]
    open_end = _words_in(tokens, _OPEN_ENDS)
    content = _prefix_sums(~_flags(tokens, "stop"))
    keep = ~open_end[last - 1] & (content[last] > content[first])
    return _Bounds(first[keep], last[keep], n)


def _candidate_list(tokens: list[_Token], bounds: _Bounds) -> list[Candidate]:
    """The candidates as ``Candidate`` objects, with the character offsets of their first and last tokens."""
    return [Candidate(first, last, tokens[first].start, tokens[last - 1].end)
            for first, last in zip(bounds.first.tolist(), bounds.last.tolist())]


def candidates(quote: str, tokens: list[_Token] | None = None) -> list[Candidate]:
    """Every token n-gram of up to ``MAX_TOKENS`` tokens that crosses no clause punctuation."""
    tokens = _tokens(quote) if tokens is None else tokens
    return _candidate_list(tokens, _candidate_bounds(tokens, _clause_breaks(tokens)))


def _around(values: np.ndarray, bounds: _Bounds) -> np.ndarray:
    """The sum of a per-token value over the ``WINDOW`` tokens on each side of every candidate."""
    first, last = bounds.first, bounds.last
    return bounds.count_in(values, first - WINDOW, first) + bounds.count_in(values, last, last + WINDOW)


# Punctuation passed to the tagger as words of their own (a comma or bracket tells it where a phrase ends); full
# stops are not, since most inside a quote belong to ordinals and abbreviations ("18. September", "Mrd.").
_TAGGED_PUNCTUATION = re.compile(r"[,;:()\[\]\"„“”»«!?]")


def _word_classes(tokens: list[_Token]) -> list[str]:
    """The word class (``rag.lang.pos.CLASSES``) of each token, tagged in the sentence with its punctuation."""
    words, at = [], []
    for token in tokens:
        words.extend(_TAGGED_PUNCTUATION.findall(token.gap))
        at.append(len(words))
        words.append(token.text)
    classes = pos.word_classes(words)
    return [classes[k] for k in at]


def _phrases(tokens: list[_Token], classes: list[str], breaks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per token, its noun phrase's start, core start and end in tokens (the core leaves out leading articles), -1
    outside one: a phrase is a run of ``pos.PHRASE`` words with no punctuation inside that holds a head (noun, name
    or number)."""
    n = len(tokens)
    start, core, end = np.full(n, -1), np.full(n, -1), np.full(n, -1)
    k = 0
    while k < n:
        stop = k
        while stop < n and classes[stop] in pos.PHRASE and (
                stop == k or not (breaks[stop] or "," in tokens[stop].gap)):
            stop += 1
        if stop > k and any(classes[i] in pos.HEADS for i in range(k, stop)):
            start[k:stop] = k
            core[k:stop] = next(i for i in range(k, stop) if classes[i] != "det")
            end[k:stop] = stop
        k = max(stop, k + 1)
    return start, core, end


def _phrase_fits(bounds: _Bounds, phrases: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """Per candidate, the column of how it lies on the noun phrases (one of ``_PHRASE_FITS``): the first of the rules
    that holds (they are applied last to first, so that an earlier one overrides a later one)."""
    first, last = bounds.first, bounds.last
    phrase_start, phrase_core, phrase_end = phrases
    start, core, end = phrase_start[first], phrase_core[first], phrase_end[first]
    last_start, last_end = phrase_start[last - 1], phrase_end[last - 1]
    same = (start >= 0) & (start == last_start) & (end == last_end)  # both edges in one phrase
    apart = (start >= 0) & (last_start >= 0) & ~same  # the edges in two different phrases
    rules = (
        (same & (last == end) & (first == start), "np_exact"),
        (same & (last == end) & (first == core), "np_core"),
        (same & (last == end), "np_tail"),
        (same, "np_cut_end"),
        (apart & (first <= core) & (last == last_end), "np_over"),
        (apart & (first > core), "np_cut_start"),
        (apart, "np_cut_end"),
        ((start >= 0) & (first > core), "np_cut_start"),
        ((last_start >= 0) & (last < last_end), "np_cut_end"),
        (bounds.any(phrase_start >= 0), "np_over"),
    )
    fits = np.full(len(first), _INDEX["np_none"])
    for held, fit in reversed(rules):
        fits = np.where(held, _INDEX[fit], fits)
    return fits


def word_spans(quote: str, tokens: list[_Token] | None = None) -> list[tuple[int, int]]:
    """The character offsets of the quote's words, as the span scorer splits them (what a ``Reading`` is over)."""
    return [(t.start, t.end) for t in (_tokens(quote) if tokens is None else tokens)]


@dataclass(frozen=True)
class _Words:
    """The quote's per-token flags as arrays, built once per quote for the column-wise features."""

    cap: np.ndarray
    stop: np.ndarray
    digit: np.ndarray
    number: np.ndarray
    month: np.ndarray
    year: np.ndarray
    unit: np.ndarray
    scale: np.ndarray
    comma: np.ndarray  # a comma between the token and the one before it


def _words(tokens: list[_Token]) -> _Words:
    """The per-token flags of ``tokens`` (``_Words``)."""
    fields = ("cap", "stop", "digit", "number", "month", "year", "unit", "scale")
    return _Words(**{field: _flags(tokens, field) for field in fields},
                  comma=np.array(["," in t.gap for t in tokens], dtype=bool))


def _each(function, values: np.ndarray) -> np.ndarray:
    """``function`` (a ``math`` logarithm) of each value, by ``math`` as the features were always computed: numpy's
    vectorised logarithms may differ in the last bit, and the trained model should see the very same numbers. For
    few possible values (lengths, distances) it is applied to those and the results picked by index."""
    return np.array([function(value) for value in values.tolist()], dtype=np.float64)


def _distinct_stems(tokens: list[_Token], matched: np.ndarray) -> np.ndarray:
    """For each position ``k`` from 0 to n, how many distinct stems the matched tokens before ``k`` have."""
    seen: set[str] = set()
    counts = [0]
    for token, match in zip(tokens, matched.tolist()):
        if match:
            seen.add(token.stem)
        counts.append(len(seen))
    return np.array(counts)


def _overlap_values(words: _Words, related: np.ndarray, asked: _Question, bounds: _Bounds) -> dict:
    """How much of the question the candidate holds (counted over its content words) and has beside it."""
    in_question = related == 1.0
    # every candidate holds a content word (``_candidate_bounds`` drops those of stopwords only)
    content = bounds.count(~words.stop)
    overlap = bounds.count(in_question & ~words.stop) / content
    asked_count = max(len(asked.stems), 1)
    first, last = bounds.first, bounds.last
    return {
        "overlap_frac": overlap, "related_frac": bounds.count(related * ~words.stop) / content,
        "any_overlap": overlap > 0, "all_overlap": overlap == 1,
        "near_left": bounds.count_in(related, first - 3, first), "near_right": bounds.count_in(related, last, last + 3),
        "prev_is_q": bounds.previous(in_question), "next_is_q": bounds.following(in_question),
        # how much of the question stands around the span (the sliding window of the SQuAD baseline)
        "window_match": _around(related, bounds) / asked_count,
        "window_names": _around(in_question & words.cap, bounds),
    }


def _distance_values(tokens: list[_Token], related: np.ndarray, asked: _Question, bounds: _Bounds) -> dict:
    """Where the question's words stand in the quote against the candidate: the nearest one, and how many distinct
    ones stand on either side."""
    matched = related != 0
    before, after = _nearest(matched)
    first, last, n = bounds.first, bounds.last, bounds.n
    left, right = before[first], after[last]  # the nearest question word before and after (-1 and n for none)
    has_left, has_right = left >= 0, right < n
    # a distance to a word on either side is below n; n stands for "none", as when there is none on either side
    distance = np.minimum(np.where(has_left, first - left, n), np.where(has_right, right - last + 1, n))
    asked_count = max(len(asked.stems), 1)
    on_right = _distinct_stems(tokens[::-1], matched[::-1])[::-1]  # … from position k on
    return {
        "dist_log": _each(math.log1p, np.arange(n + 1))[distance], "no_match": float(not matched.any()),
        "matches_log": math.log1p(int(matched.sum())), "between_matches": has_left & has_right,
        "asked_left": _distinct_stems(tokens, matched)[first] / asked_count,
        "asked_right": on_right[last] / asked_count,
    }


def _asked_noun_values(tokens: list[_Token], asked: _Question, bounds: _Bounds) -> dict:
    """The noun the question asks for ("Welche Gruppe") in, before or after the candidate, and the content words
    beside the question word ("Wer führte …": "führte") standing beside the candidate."""
    head = asked.head
    is_head = np.array([head is not None and t.stem == head for t in tokens], dtype=bool)
    ends_in_head = np.array([head is not None and t.stem.endswith(head) for t in tokens], dtype=bool)
    compound = ends_in_head & ~is_head & (head is not None and len(head) >= 4)
    before = np.array([t.stem in asked.before for t in tokens], dtype=bool)
    after = np.array([t.stem in asked.after for t in tokens], dtype=bool)
    first, last = bounds.first, bounds.last
    return {
        "next_is_head": bounds.following(is_head), "has_head": bounds.any(is_head), "head_compound": compound[last - 1],
        # the asked noun right before the span: an apposition ("die Gruppe Venom" for "Welche Gruppe …")
        "head_before": bounds.count_in(ends_in_head, first - 2, first) > 0,
        "aligned_before": bounds.count_in(before, first - 3, first) > 0,
        "aligned_after": bounds.count_in(after, last, last + 3) > 0,
    }


def _boundary_values(tokens: list[_Token], words: _Words, breaks: np.ndarray, bounds: _Bounds,
                     shapes: dict[str, np.ndarray]) -> dict:
    """The words at and beside the candidate's edges: where a phrase, clause, name or amount would go on."""
    first, last = bounds.first, bounds.last
    inflected = ~words.cap & ~words.stop & ~words.digit & np.array(
        [t.lower.endswith(("e", "en", "er", "es", "em")) for t in tokens], dtype=bool)
    articles, prepositions = _words_in(tokens, de.ARTICLES), _words_in(tokens, de.PREPOSITIONS)
    measure = words.scale | words.unit | words.number
    return {
        "ends_clause": (last == bounds.n) | bounds.following(words.comma) | breaks[last],
        # German nouns are capitalised: a capitalised word right after the span means it stopped inside a phrase
        "noun_follows": bounds.following(words.cap & ~words.stop) & ~breaks[last],
        "modifier_before": bounds.previous(inflected) & ~breaks[first], "starts_inflected_lower": inflected[first],
        "prev_preposition": bounds.previous(prepositions), "prev_article": bounds.previous(articles),
        "prev_comma": words.comma[first], "next_comma": bounds.following(words.comma),
        "starts_article": articles[first], "starts_prep": prepositions[first],
        "starts_stop": words.stop[first], "ends_stop": words.stop[last - 1],
        "commas": bounds.count_in(words.comma, first + 1, last),
        "maximal_name": shapes["name"] & ~((first > 1) & bounds.previous(words.cap) & ~breaks[first])
        & ~(bounds.following(words.cap) & ~breaks[last]),
        "maximal_number": shapes["amount"] & ~bounds.following(measure) & ~bounds.previous(words.number),
    }


def _in_parens(tokens: list[_Token]) -> np.ndarray:
    """Per token, whether it stands inside parentheses."""
    depth, inside = 0, []
    for token in tokens:
        depth = max(0, depth + token.gap.count("(") - token.gap.count(")"))
        inside.append(depth > 0)
    return np.array(inside, dtype=bool)


def _size_values(tokens: list[_Token], words: _Words, bounds: _Bounds) -> dict:
    """The candidate's length, position and make-up."""
    first, last, n = bounds.first, bounds.last, bounds.n
    size = bounds.size
    chars = np.array([t.end for t in tokens])[last - 1] - np.array([t.start for t in tokens])[first]
    acronym = np.array([len(t.text) >= 2 and t.text.isupper() and t.text.isalpha() for t in tokens], dtype=bool)
    return {
        "stop_frac": bounds.count(words.stop) / size, "in_parens": _in_parens(tokens)[first],
        "sentence_start": first == 0, "rel_pos": first / n,
        "len_log": _each(math.log, np.arange(1, MAX_TOKENS + 1))[size - 1], "chars_log": _each(math.log, chars),
        "len5_6": (size >= 5) & (size <= 6), "len7plus": size >= 7,
        "acronym": bounds.any(acronym), "quote_len_log": math.log(n),
    }


def _amounts(tokens: list[_Token], words: _Words, ranges: np.ndarray, bounds: _Bounds) -> np.ndarray:
    """Amounts: after any approximators ("rund", "über"), a number, then only numbers, scales, units and range words,
    but for the last word, which may be any capitalised one ("115 bis 135 Milliarden US-Dollar")."""
    inner = ~_words_in(tokens, de.APPROXIMATORS)
    odd = inner & ~(words.number | words.scale | words.unit | ranges)
    last_inner, next_inner = _nearest(inner)
    first_word = next_inner[bounds.first]  # the candidate's first word that is no approximator (n if none) …
    last_word = last_inner[bounds.last]  # … and its last (-1 if none)
    starts_with_number = (first_word < bounds.last) & np.append(words.number, False)[first_word]
    odd_count = bounds.count(odd)
    ends_on_name = (odd_count == 1) & np.append(odd & words.cap, False)[last_word]
    return starts_with_number & ((odd_count == 0) | ends_on_name)


def _shapes(tokens: list[_Token], words: _Words, bounds: _Bounds) -> dict[str, np.ndarray]:
    """Typed shapes of every candidate: amount, date, year, name (each a whole-span pattern)."""
    first, last = bounds.first, bounds.last
    ranges = _words_in(tokens, de.RANGE_WORDS)
    date_words = words.month | words.digit | ranges | _words_in(tokens, _DATE_WORDS)
    name_words = words.cap | _words_in(tokens, de.NAME_PARTICLES)
    return {
        "amount": _amounts(tokens, words, ranges, bounds),
        "date": bounds.any(words.month | words.year) & bounds.all(date_words),
        "year": (bounds.size == 1) & words.year[first],
        "name": words.cap[first] & words.cap[last - 1] & ~bounds.any(words.digit) & bounds.all(name_words),
    }


def _types(words: _Words, bounds: _Bounds, shapes: dict[str, np.ndarray]) -> np.ndarray:
    """The ``_TYPES`` flags of every candidate, a column each in ``_TYPES`` order."""
    first, last, size = bounds.first, bounds.last, bounds.size
    types = {
        "digit": bounds.any(words.digit), "number_only": bounds.all(words.number), "year": shapes["year"],
        "month": bounds.any(words.month), "unit": bounds.any(words.unit | words.scale), "amount": shapes["amount"],
        "date": shapes["date"], "name": shapes["name"], "cap_first": words.cap[first],
        "lower_all": ~bounds.any(words.cap), "noun_end": words.cap[last - 1] & ~words.stop[last - 1],
        "len1": size == 1, "len2": size == 2, "len3plus": size >= 3,
    }
    return np.column_stack([types[name] for name in _TYPES]).astype(np.float64)


def _range_max(values: np.ndarray, lows: np.ndarray, highs: np.ndarray) -> np.ndarray:
    """The highest of ``values[low:high]`` for each candidate, ``_OUTSIDE`` for an empty range (each range lies in a
    candidate, so it is shorter than ``MAX_TOKENS``)."""
    at = lows[:, None] + np.arange(MAX_TOKENS)
    inside = at < highs[:, None]
    picked = np.where(inside, values[np.minimum(at, len(values) - 1)], -np.inf)
    return np.where(inside.any(axis=1), picked.max(axis=1), _OUTSIDE)


def _reader_values(reading: Reading, bounds: _Bounds) -> dict:
    """The reader's logits at and around each candidate's edges (``_READER_FEATURES``)."""
    # one more word standing for "none": the word after the last one, and (as index -1) the word before the first
    start, end = np.append(reading.start, _OUTSIDE), np.append(reading.end, _OUTSIDE)
    first, last = bounds.first, bounds.last
    return {
        "reader_start": start[first], "reader_end": end[last - 1],
        "reader_start_inside": _range_max(start, first + 1, last),
        "reader_end_inside": _range_max(end, first, last - 1),
        "reader_start_after": start[last], "reader_end_before": end[first - 1],
    }


def _put(matrix: np.ndarray, values: dict) -> None:
    """Write each named feature's values (one per candidate, or one for all) into its column."""
    for name, column in values.items():
        matrix[:, _INDEX[name]] = column


def _mark(matrix: np.ndarray, *columns: np.ndarray) -> None:
    """Set 1.0 in each row at its column in each of ``columns`` (one array per group of one-hot features, one column
    per candidate); a negative column marks nothing in that row. One call for all groups, as numpy's cost here is
    mostly per call."""
    at = np.column_stack(columns)
    rows, group = np.nonzero(at >= 0)
    matrix[rows, at[rows, group]] = 1.0


def _class_columns(prefix: str, classes: list[str]) -> np.ndarray:
    """Per token, the column of ``{prefix}_{its word class}``."""
    return np.array([_INDEX[f"{prefix}_{cls}"] for cls in classes])


def _heads(classes: list[str], bounds: _Bounds) -> np.ndarray:
    """Per candidate, its head: its last noun, name or number, as a token index (n when it has none)."""
    before, _ = _nearest(np.array([cls in pos.HEADS for cls in classes], dtype=bool))
    head = before[bounds.last]
    return np.where(head >= bounds.first, head, bounds.n)


def _head_columns(prefix: str, classes: list[str], heads: np.ndarray) -> np.ndarray:
    """Per candidate, the column of ``{prefix}_{class of its head}`` (``{prefix}_none`` for none)."""
    columns = [_INDEX[f"{prefix}_{cls}"] if cls in pos.HEADS else -1 for cls in classes]
    return np.array(columns + [_INDEX[f"{prefix}_none"]])[heads]


def _mark_word_classes(matrix: np.ndarray, tokens: list[_Token], breaks: np.ndarray, classes: list[str],
                       bounds: _Bounds, kind: str) -> None:
    """The parts-of-speech features (``_POS_FEATURES``)."""
    heads = _heads(classes, bounds)
    _mark(matrix, _class_columns("first", classes)[bounds.first], _class_columns("last", classes)[bounds.last - 1],
          bounds.previous(_class_columns("prev", classes), -1), bounds.following(_class_columns("next", classes), -1),
          _head_columns("head", classes, heads), _head_columns(f"{kind}_head", classes, heads),
          _phrase_fits(bounds, _phrases(tokens, classes, breaks)))
    matrix[:, _INDEX["has_verb"]] = bounds.any(np.array([cls == "verb" for cls in classes], dtype=bool))


def _mark_word_before(matrix: np.ndarray, tokens: list[_Token], bounds: _Bounds, kind: str) -> None:
    """The group of the word before the candidate (``_BEFORE_GROUPS``; a comma between them wins), also crossed
    with the typed kinds of question."""
    groups = ["comma" if "," in token.gap else _BEFORE.get(tokens[k - 1].lower) if k else None
              for k, token in enumerate(tokens)]
    prefixes = ("after", f"{kind}_after") if kind in _TYPED_KINDS else ("after",)
    _mark(matrix, *(np.array([_INDEX[f"{prefix}_{group}"] if group else -1 for group in groups])[bounds.first]
                    for prefix in prefixes))


@dataclass(frozen=True)
class SpanRows:
    """A quote's candidates and their feature rows but for the reader's columns (``span_rows``): all that can be
    computed before the reader has read the quote."""

    found: list[Candidate]
    matrix: np.ndarray
    bounds: _Bounds

    def read(self, reading: Reading) -> np.ndarray:
        """The full feature rows: these with the reader's columns filled from ``reading``."""
        matrix = self.matrix.copy()
        if self.found:
            _put(matrix, _reader_values(reading, self.bounds))
        return matrix


def span_rows(question: str, quote: str, tokens: list[_Token] | None = None) -> SpanRows:
    """The candidates of ``quote`` and one feature row per candidate, in ``FEATURES`` order, the reader's columns
    left at zero. Each feature is computed for all candidates at once (a column), from arrays over the quote's
    tokens."""
    tokens = _tokens(quote) if tokens is None else tokens
    breaks = _clause_breaks(tokens)
    bounds = _candidate_bounds(tokens, breaks)
    found = _candidate_list(tokens, bounds)
    matrix = np.zeros((len(found), len(FEATURES)), dtype=np.float64)
    if not found:
        return SpanRows(found, matrix, bounds)
    asked = _question(question)
    related = np.array([_related(t.lower, t.stem, asked) for t in tokens])
    words = _words(tokens)
    shapes = _shapes(tokens, words, bounds)
    values = {**_overlap_values(words, related, asked, bounds), **_distance_values(tokens, related, asked, bounds),
              **_asked_noun_values(tokens, asked, bounds), **_boundary_values(tokens, words, breaks, bounds, shapes),
              **_size_values(tokens, words, bounds)}
    _put(matrix, values)
    types = _types(words, bounds, shapes)
    for prefix in ("type", f"{asked.kind}_x"):
        offset = _INDEX[f"{prefix}_{_TYPES[0]}"]
        matrix[:, offset:offset + len(_TYPES)] = types
    _put(matrix, {f"{asked.kind}_x_{name}": values[name] for name in _KIND_SCALED})
    _mark_word_classes(matrix, tokens, breaks, _word_classes(tokens), bounds, asked.kind)
    _mark_word_before(matrix, tokens, bounds, asked.kind)
    return SpanRows(found, matrix, bounds)


def span_features(question: str, quote: str, reading: Reading,
                  tokens: list[_Token] | None = None) -> tuple[list[Candidate], np.ndarray]:
    """The candidates of ``quote`` and their full feature rows; ``reading`` is the reader's view of the quote's
    words (``Reader.read(question, quote, word_spans(quote))``)."""
    rows = span_rows(question, quote, tokens)
    return rows.found, rows.read(reading)


def expected_f1(found: list[Candidate], tokens: list[_Token], probabilities: np.ndarray) -> np.ndarray:
    """For each candidate, its token F1 against the answer expected under the model's probabilities (articles not
    counted, as in SQuAD's measure). Choosing by this rather than by probability alone (minimum-Bayes-risk decoding)
    prefers the span that overlaps most of the likely answers, which is what token F1 rewards."""
    weight = np.array([0.0 if t.lower in de.ARTICLES else 1.0 for t in tokens])
    cumulative = _prefix_sums(weight)
    first = np.array([c.first for c in found])
    last = np.array([c.last for c in found])
    length = cumulative[last] - cumulative[first]
    low = np.maximum(first[:, None], first[None, :])
    high = np.maximum(np.minimum(last[:, None], last[None, :]), low)
    overlap = cumulative[high] - cumulative[low]
    total = length[:, None] + length[None, :]
    f1 = np.divide(2 * overlap, total, out=np.zeros_like(overlap), where=total > 0)
    return f1 @ probabilities


def short_answer(question: str, quote: str, reader: Reader, model: SpanModel | None = None,
                 terms: str = "") -> Span | None:
    """The verbatim span of ``quote`` with the highest expected token F1 (its ``score``) among the plausible answers
    to ``question``; None for explanation and yes/no questions (``wants_short_answer``) and when no span reaches the
    model's threshold. ``terms``: more words the span features count as the question's (an English question's
    German words, ``english_gloss``), not read by the reader (XQuAD-de held-out asked in English: short EM/F1
    0.259/0.362 → 0.277/0.367)."""
    if not quote.strip() or not wants_short_answer(question):
        return None
    tokens = _tokens(quote)
    if not candidates(quote, tokens):
        return None
    model = model or default_span_model()
    asked = f"{question} {terms}" if terms else question
    # The span features (tagging the quote above all) are computed while the reader reads (``Reader.read_beside``).
    reading, rows = reader.read_beside(question, quote, word_spans(quote, tokens),
                                       lambda: span_rows(asked, quote, tokens))
    return choose_span(asked, quote, reading, model, tokens, rows)


def _choosable(question: str, matrix: np.ndarray) -> np.ndarray:
    """Which candidates may be the short answer: all but those made of the question's own words only ("2026" for
    "Wann hat Meta die Pläne für 2026 bekanntgegeben?"), unless the question offers alternatives ("A oder B?").

    Why: an answer tells what the question does not. Of XQuAD-de's 1,186 gold answers with a content word, 9 (0.8 %)
    consist of question words, most of them one of the alternatives a question offers. The learned scorer weighs
    such spans down but still chose them, for years above all: the reader finds a year a likely answer to "wann"
    wherever it stands. They stay in the distribution the expected F1 is taken over and set the floor of what is
    plausible (``PLAUSIBLE``), so that every other choice is the same; a quote whose plausible spans are all echoes
    gets no short answer. On XQuAD-de this changes nearly nothing: gold sentences, tuning half 4-fold
    cross-validated with out-of-fold readers EM/F1 0.4652/0.6197 unchanged, held-out half 0.4373/0.5971 ->
    0.4373/0.5975; end to end (``rag eval``) unchanged. It is for news questions that name a year: "Wann hat Meta
    die Investitionspläne für 2026 bekanntgegeben?" was answered "2026". (Taking them out of the distribution too
    moved other choices: held-out end to end short EM/F1 0.344/0.461 -> 0.342/0.459.)"""
    if de.ALTERNATIVES.search(question):
        return np.ones(len(matrix), dtype=bool)
    return matrix[:, _INDEX["all_overlap"]] == 0


def _within_sentences(found: list[Candidate], quote: str) -> np.ndarray:
    """Which candidates cover no text that belongs to no sentence of the quote (``sentence_spans`` leaves out only a
    paragraph's dateline, "Berlin – ").

    Why: a quote of a heading and the article's first sentence holds the dateline between them, and to "Wer leitet
    die Deutsche Bahn?" the place the report was filed from looked like the name asked for ("Berlin")."""
    outside, previous = [], 0
    for start, end in sentence_spans(quote):
        if quote[previous:start].strip():
            outside.append((previous, start))
        previous = end
    keep = np.ones(len(found), dtype=bool)
    for low, high in outside:
        keep &= np.array([c.end <= low or c.start >= high for c in found], dtype=bool)
    return keep


def choose_span(question: str, quote: str, reading: Reading, model: SpanModel,
                tokens: list[_Token] | None = None, rows: SpanRows | None = None) -> Span | None:
    """``short_answer`` once the reader has read the quote (training measures many models on one reading);
    ``tokens`` and ``rows`` (``span_rows``): the quote's, when the caller has them already."""
    if not quote.strip() or is_explanation(question):
        return None
    tokens = _tokens(quote) if tokens is None else tokens
    rows = span_rows(question, quote, tokens) if rows is None else rows
    found, matrix = rows.found, rows.read(reading)
    if not found:
        return None
    probabilities = model.scores(matrix)
    choosable = _choosable(question, matrix) & _within_sentences(found, quote)
    expected = expected_f1(found, tokens, probabilities)
    plausible = choosable & (probabilities >= PLAUSIBLE * probabilities.max())
    best = int(np.argmax(np.where(plausible, expected, -1.0)))
    if not plausible[best] or expected[best] < model.threshold:
        return None
    cand = found[best]
    start, end = _quoted_around(quote, cand.start, cand.end)
    return Span(start, end, quote[start:end], float(expected[best]))


# A quoted name or title of a few words ("Bummel durch Europa", „The Horns of Nimon“): opened and closed on one line.
_QUOTED = re.compile(r"[\"„“»«]([^\"„“”»«\n]{1,80})[\"“”«»]")


def _quoted_around(quote: str, start: int, end: int) -> tuple[int, int]:
    """``[start, end)``, or the whole quoted text of at most ``MAX_TOKENS`` words it lies inside: a piece of a quoted
    title is no answer ("Europa" for the book "Bummel durch Europa"). XQuAD-de's held-out half, end to end: short
    EM/F1 0.328/0.454 → 0.333/0.456 (asked in English 0.265/0.354 → 0.268/0.356); the German sets unchanged."""
    for match in _QUOTED.finditer(quote):
        inner_start, inner_end = match.span(1)
        if inner_start <= start and end <= inner_end and (start, end) != (inner_start, inner_end):
            text = quote[inner_start:inner_end]
            if len(text.split()) <= MAX_TOKENS and text == text.strip():
                return inner_start, inner_end
    return start, end
