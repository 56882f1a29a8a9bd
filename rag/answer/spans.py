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
from rag.lang import de, pos

MODEL_PATH = Path(__file__).parent / "models" / "span_model.json"
MAX_TOKENS = 8
# Only spans at least this share as probable as the best one may be chosen by expected F1, so the answer stays a
# likely answer rather than a long span that overlaps several ("Berlin von Werner von Siemens"). Chosen on XQuAD-de's
# tuning half: EM 0.312 and F1 0.459 there, against 0.291/0.463 with no such floor and 0.324/0.427 by probability alone.
PLAUSIBLE = 0.25
# Tokens on each side of a span in which the question's words are counted.
WINDOW = 5

# A token: a clock time ("3:08"), or letters/digits joined by inner hyphens, dots, commas, slashes or degree signs
# ("US-Dollar", "14,3", "5.100", "28,5°E", "22-mal"), or a lone currency/percent sign.
_TOKEN = re.compile(r"\d{1,2}:\d\d(?!\d)|[^\W_]+(?:[-.,'’/°][^\W_]+)*[%°]?|[%€$£]")
# Punctuation that closes a clause: a span never crosses it (a comma is allowed and counted; a dot only after a
# word that is no abbreviation or ordinal, so "18. September" and "Mrd. Dollar" stay joinable).
_CLAUSE_BREAK = re.compile(r"[;:()\[\]–—\"„“”»«!?]")

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


def _stem(word: str) -> str:
    return de.stem(word.lower())


def is_explanation(question: str) -> bool:
    """"Warum …?", "Wie funktioniert …", "Why …": the answer is a reason or a process, not a short fact."""
    return bool(de.EXPLANATION_PATTERN.search(question))


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
        digit = any(ch.isdigit() for ch in word)
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
    head = de.ASKED_NOUN_PATTERN.search(question)
    kind, start, end = _asking(question)
    before = [w for w in _TOKEN.findall(question[:start]) if w.lower() not in _STOP][-2:]
    after = [w for w in _TOKEN.findall(question[end:]) if w.lower() not in _STOP][:2]
    return _Question(kind=kind, stems=frozenset(_stem(w) for w in content),
                     words=frozenset(w.lower() for w in content), head=_stem(head.group(1)) if head else None,
                     before=frozenset(_stem(w) for w in before), after=frozenset(_stem(w) for w in after))


def _shape(tokens: list[_Token]) -> dict[str, bool]:
    """Typed shapes of one candidate: amount, date, year, name (each a whole-span pattern)."""
    inner = [t for t in tokens if t.lower not in de.APPROXIMATORS]
    numbers = [t for t in inner if t.number]
    amount = bool(numbers) and inner[:1] == numbers[:1] and all(
        t.number or t.scale or t.unit or t.lower in de.RANGE_WORDS or (i == len(inner) - 1 and t.cap)
        for i, t in enumerate(inner))
    date = any(t.month or t.year for t in tokens) and all(t.month or t.digit or t.lower in de.RANGE_WORDS or
                                                          t.lower in ("im", "jahr", "jahre", "anfang", "ende", "mitte")
                                                          for t in tokens)
    name = tokens[0].cap and tokens[-1].cap and not any(t.digit for t in tokens) and all(
        t.cap or t.lower in de.NAME_PARTICLES for t in tokens)
    return {"amount": amount, "date": date, "year": len(tokens) == 1 and tokens[0].year, "name": name}


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
         "prev_is_q", "next_is_q", "next_is_head", "has_head", "prev_prep", "prev_article", "prev_comma", "next_comma",
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


def candidates(quote: str, tokens: list[_Token] | None = None) -> list[Candidate]:
    """Every token n-gram of up to ``MAX_TOKENS`` tokens that crosses no clause punctuation."""
    tokens = _tokens(quote) if tokens is None else tokens
    found = []
    for i in range(len(tokens)):
        for j in range(i + 1, min(i + MAX_TOKENS, len(tokens)) + 1):
            if j - 1 > i and _breaks(tokens, j - 1):
                break
            if tokens[j - 1].lower not in _OPEN_ENDS and not all(t.stop for t in tokens[i:j]):
                found.append(Candidate(i, j, tokens[i].start, tokens[j - 1].end))
    return found


def _around(cumulative: np.ndarray, cand: Candidate, n: int) -> float:
    """The sum of a per-token value over the ``WINDOW`` tokens on each side of a candidate (from its prefix sums)."""
    return float(cumulative[cand.first] - cumulative[max(0, cand.first - WINDOW)]
                 + cumulative[min(n, cand.last + WINDOW)] - cumulative[cand.last])


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


def _phrases(tokens: list[_Token], classes: list[str]) -> list[tuple[int, int, int]]:
    """Per token, its noun phrase as ``(start, core start, end)`` in tokens (the core leaves out leading articles),
    or ``(-1, -1, -1)`` outside one: a phrase is a run of ``pos.PHRASE`` words with no punctuation inside that holds
    a head (noun, name or number)."""
    found = [(-1, -1, -1)] * len(tokens)
    k = 0
    while k < len(tokens):
        end = k
        while end < len(tokens) and classes[end] in pos.PHRASE and (
                end == k or not (_breaks(tokens, end) or "," in tokens[end].gap)):
            end += 1
        if end > k and any(classes[i] in pos.HEADS for i in range(k, end)):
            core = next(i for i in range(k, end) if classes[i] != "det")
            found[k:end] = [(k, core, end)] * (end - k)
        k = max(end, k + 1)
    return found


def _phrase_fit(cand: Candidate, phrases: list[tuple[int, int, int]]) -> str:
    """How a candidate lies on the noun phrases (one of ``_PHRASE_FITS``)."""
    start, core, end = phrases[cand.first]
    last_start, _, last_end = phrases[cand.last - 1]
    if start >= 0 and (start, end) == (last_start, last_end):
        if cand.last == end:
            return "np_exact" if cand.first == start else "np_core" if cand.first == core else "np_tail"
        return "np_cut_end"
    if start >= 0 and last_start >= 0:
        return "np_over" if cand.first <= core and cand.last == last_end else (
            "np_cut_start" if cand.first > core else "np_cut_end")
    if start >= 0 and cand.first > core:
        return "np_cut_start"
    if last_start >= 0 and cand.last < last_end:
        return "np_cut_end"
    return "np_over" if any(p[0] >= 0 for p in phrases[cand.first:cand.last]) else "np_none"


def word_spans(quote: str, tokens: list[_Token] | None = None) -> list[tuple[int, int]]:
    """The character offsets of the quote's words, as the span scorer splits them (what a ``Reading`` is over)."""
    return [(t.start, t.end) for t in (_tokens(quote) if tokens is None else tokens)]


def span_features(question: str, quote: str, reading: Reading,
                  tokens: list[_Token] | None = None) -> tuple[list[Candidate], np.ndarray]:
    """The candidates of ``quote`` and one feature row per candidate, in ``FEATURES`` order; ``reading`` is the
    reader's view of the quote's words (``Reader.read(question, quote, word_spans(quote))``)."""
    tokens = _tokens(quote) if tokens is None else tokens
    found = candidates(quote, tokens)
    matrix = np.zeros((len(found), len(FEATURES)), dtype=np.float64)
    if not found:
        return found, matrix
    # one more word standing for "none": the word after the last one, and (as index -1) the word before the first
    start, end = np.append(reading.start, _OUTSIDE), np.append(reading.end, _OUTSIDE)
    for row, cand in enumerate(found):
        matrix[row, -len(_READER_FEATURES):] = (
            start[cand.first], end[cand.last - 1], max(start[cand.first + 1:cand.last], default=_OUTSIDE),
            max(end[cand.first:cand.last - 1], default=_OUTSIDE), start[cand.last], end[cand.first - 1])
    asked = _question(question)
    related = [_related(t.lower, t.stem, asked) for t in tokens]
    in_question = [r == 1.0 for r in related]
    matched = [i for i, r in enumerate(related) if r]
    asked_count = max(len(asked.stems), 1)
    related_sum = np.concatenate([[0.0], np.cumsum(related)])
    names_sum = np.concatenate([[0.0], np.cumsum([q and t.cap for q, t in zip(in_question, tokens)])])
    # how many distinct question words stand before token k (asked_left[k]) and from token k on (asked_right[k])
    asked_left = [len({tokens[i].stem for i in matched if i < k}) for k in range(len(tokens) + 1)]
    asked_right = [len({tokens[i].stem for i in matched if i >= k}) for k in range(len(tokens) + 1)]
    index = {name: k for k, name in enumerate(FEATURES)}
    kind_offset = {kind: index[f"{kind}_x_{_TYPES[0]}"] for kind in KINDS}
    type_offset = index[f"type_{_TYPES[0]}"]
    n = len(tokens)
    classes = _word_classes(tokens)
    phrases = _phrases(tokens, classes)
    depth, parens = 0, []
    for token in tokens:
        depth = max(0, depth + token.gap.count("(") - token.gap.count(")"))
        parens.append(depth > 0)
    for row, cand in enumerate(found):
        span = tokens[cand.first:cand.last]
        size = len(span)
        shape = _shape(span)
        content = [k for k in range(cand.first, cand.last) if not tokens[k].stop] or [cand.first]
        overlap = sum(in_question[k] for k in content) / len(content)
        fuzzy = sum(related[k] for k in content) / len(content)
        before = [i for i in matched if i < cand.first]
        after = [i for i in matched if i >= cand.last]
        distance = min([cand.first - i for i in before] + [i - cand.last + 1 for i in after], default=n)
        prev = tokens[cand.first - 1] if cand.first else None
        nxt = tokens[cand.last] if cand.last < n else None
        stops = sum(t.stop for t in span)
        values = {
            "overlap_frac": overlap, "related_frac": fuzzy, "any_overlap": float(overlap > 0),
            "all_overlap": float(overlap == 1),
            "dist_log": math.log1p(distance), "no_match": float(not matched),
            "near_left": sum(related[i] for i in before if cand.first - i <= 3),
            "near_right": sum(related[i] for i in after if i - cand.last < 3),
            "prev_is_q": float(prev is not None and in_question[cand.first - 1]),
            "next_is_q": float(nxt is not None and in_question[cand.last]),
            "next_is_head": float(nxt is not None and asked.head is not None and nxt.stem == asked.head),
            "has_head": float(asked.head is not None and any(t.stem == asked.head for t in span)),
            "head_compound": float(asked.head is not None and len(asked.head) >= 4 and span[-1].stem != asked.head
                                   and span[-1].stem.endswith(asked.head)),
            "aligned_before": float(any(t.stem in asked.before for t in tokens[max(0, cand.first - 3):cand.first])),
            "aligned_after": float(any(t.stem in asked.after for t in tokens[cand.last:cand.last + 3])),
            "ends_clause": float(nxt is None or "," in nxt.gap or _breaks(tokens, cand.last)),
            # German nouns are capitalised: a capitalised word right after the span means it stopped inside a phrase
            "noun_follows": float(nxt is not None and nxt.cap and not nxt.stop and not _breaks(tokens, cand.last)),
            "modifier_before": float(prev is not None and not prev.cap and not prev.stop and not prev.digit
                                     and prev.lower.endswith(("e", "en", "er", "es", "em"))
                                     and not _breaks(tokens, cand.first)),
            "starts_inflected_lower": float(not span[0].cap and not span[0].stop and not span[0].digit
                                            and span[0].lower.endswith(("e", "en", "er", "es", "em"))),
            "prev_prep": float(prev is not None and prev.lower in de.PREPOSITIONS),
            "prev_article": float(prev is not None and prev.lower in de.ARTICLES),
            "prev_comma": float("," in span[0].gap), "next_comma": float(nxt is not None and "," in nxt.gap),
            "starts_article": float(span[0].lower in de.ARTICLES),
            "starts_prep": float(span[0].lower in de.PREPOSITIONS),
            "starts_stop": float(span[0].stop), "ends_stop": float(span[-1].stop), "stop_frac": stops / size,
            "commas": sum("," in t.gap for t in span[1:]), "in_parens": float(parens[cand.first]),
            "sentence_start": float(cand.first == 0), "rel_pos": cand.first / n,
            "len_log": math.log(size), "chars_log": math.log(cand.end - cand.start), "len5_6": float(5 <= size <= 6),
            "len7plus": float(size >= 7),
            "acronym": float(any(len(t.text) >= 2 and t.text.isupper() and t.text.isalpha() for t in span)),
            "maximal_name": float(shape["name"]
                                  and not (cand.first > 1 and prev.cap and not _breaks(tokens, cand.first))
                                  and not (nxt is not None and nxt.cap and not _breaks(tokens, cand.last))),
            "maximal_number": float(shape["amount"] and not (nxt is not None and (nxt.scale or nxt.unit or nxt.number))
                                    and not (prev is not None and prev.number)),
            "quote_len_log": math.log(n), "matches_log": math.log1p(len(matched)),
            "between_matches": float(bool(before) and bool(after)),
            # the asked noun right before the span: an apposition ("die Gruppe Venom" for "Welche Gruppe …")
            "head_before": float(asked.head is not None and any(
                t.stem.endswith(asked.head) for t in tokens[max(0, cand.first - 2):cand.first])),
            # how much of the question stands around the span (the sliding window of the SQuAD baseline)
            "window_match": _around(related_sum, cand, n) / asked_count,
            "window_names": _around(names_sum, cand, n),
            "asked_left": asked_left[cand.first] / asked_count, "asked_right": asked_right[cand.last] / asked_count,
        }
        for name, value in values.items():
            matrix[row, index[name]] = value
        types = (any(t.digit for t in span), all(t.number for t in span), shape["year"],
                 any(t.month for t in span), any(t.unit or t.scale for t in span), shape["amount"], shape["date"],
                 shape["name"], span[0].cap, all(not t.cap for t in span), span[-1].cap and not span[-1].stop,
                 size == 1, size == 2, size >= 3)
        row_types = np.array(types, dtype=np.float64)
        matrix[row, type_offset:type_offset + len(_TYPES)] = row_types
        offset = kind_offset[asked.kind]
        matrix[row, offset:offset + len(_TYPES)] = row_types
        for name in _KIND_SCALED:
            matrix[row, index[f"{asked.kind}_x_{name}"]] = values[name]
        heads = [classes[k] for k in range(cand.first, cand.last) if classes[k] in pos.HEADS]
        head = heads[-1] if heads else "none"
        for name in (f"first_{classes[cand.first]}", f"last_{classes[cand.last - 1]}",
                     f"prev_{classes[cand.first - 1]}" if cand.first else None,
                     f"next_{classes[cand.last]}" if nxt is not None else None,
                     f"head_{head}", f"{asked.kind}_head_{head}", _phrase_fit(cand, phrases)):
            if name:
                matrix[row, index[name]] = 1.0
        matrix[row, index["has_verb"]] = float("verb" in classes[cand.first:cand.last])
        before = "comma" if "," in span[0].gap else _BEFORE.get(prev.lower) if prev is not None else None
        if before:
            matrix[row, index[f"after_{before}"]] = 1.0
            if asked.kind in _TYPED_KINDS:
                matrix[row, index[f"{asked.kind}_after_{before}"]] = 1.0
    return found, matrix


def expected_f1(found: list[Candidate], tokens: list[_Token], probabilities: np.ndarray) -> np.ndarray:
    """For each candidate, its token F1 against the answer expected under the model's probabilities (articles not
    counted, as in SQuAD's measure). Choosing by this rather than by probability alone (minimum-Bayes-risk decoding)
    prefers the span that overlaps most of the likely answers, which is what token F1 rewards."""
    weight = np.array([0.0 if t.lower in de.ARTICLES else 1.0 for t in tokens])
    cumulative = np.concatenate([[0.0], np.cumsum(weight)])
    first = np.array([c.first for c in found])
    last = np.array([c.last for c in found])
    length = cumulative[last] - cumulative[first]
    low = np.maximum(first[:, None], first[None, :])
    high = np.maximum(np.minimum(last[:, None], last[None, :]), low)
    overlap = cumulative[high] - cumulative[low]
    total = length[:, None] + length[None, :]
    f1 = np.divide(2 * overlap, total, out=np.zeros_like(overlap), where=total > 0)
    return f1 @ probabilities


def short_answer(question: str, quote: str, reader: Reader, model: SpanModel | None = None) -> Span | None:
    """The verbatim span of ``quote`` with the highest expected token F1 (its ``score``) among the plausible answers
    to ``question``; None for explanation questions and when no span reaches the model's threshold."""
    if not quote.strip() or is_explanation(question):
        return None
    tokens = _tokens(quote)
    if not candidates(quote, tokens):
        return None
    model = model or default_span_model()
    return choose_span(question, quote, reader.read(question, quote, word_spans(quote, tokens)), model, tokens)


def choose_span(question: str, quote: str, reading: Reading, model: SpanModel,
                tokens: list[_Token] | None = None) -> Span | None:
    """``short_answer`` once the reader has read the quote (training measures many models on one reading);
    ``tokens``: the quote's, when the caller has them already."""
    if not quote.strip() or is_explanation(question):
        return None
    tokens = _tokens(quote) if tokens is None else tokens
    found, matrix = span_features(question, quote, reading, tokens)
    if not found:
        return None
    probabilities = model.scores(matrix)
    expected = expected_f1(found, tokens, probabilities)
    best = int(np.argmax(np.where(probabilities >= PLAUSIBLE * probabilities.max(), expected, -1.0)))
    if expected[best] < model.threshold:
        return None
    cand = found[best]
    return Span(cand.start, cand.end, quote[cand.start:cand.end], float(expected[best]))
