"""Answers with verifiable citations: pick the answering sentences, quote them verbatim, or abstain.

Why extractive by default: no reader model for German exists offline (see
MODELS.md), and a verbatim quote cannot misstate a figure. Every sentence of
the best passages is scored against the question on cheap, explainable
signals: lexical coverage of the question's terms (IDF-weighted, German
stems), whether it holds the kind of thing asked for (an amount for "wie
viel", a person for "wer", a date for "wann"), whether its time matches the
question's (explicit years, and "im vergangenen Quartal" resolved against the
article's date), and the rank of its passage. One to three sentences become
the answer; from articles of different dates they are ordered as a timeline.

Abstention compares the best sentence's support (the same signals without the
passage rank) with a threshold calibrated on the project's eval set by
``calibrate_threshold`` (tuning half only; see tests/test_answering.py).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Sequence

from rag.corpus import MONTH_NUMBERS, Article
from rag.lexical import tokenize
from rag.retrieval import Hit, Retriever
from rag.schema import Answer, Citation, Retrieved
from rag.sentences import sentence_spans
from rag.settings import Settings

REFUSAL = "Dazu enthalten die Artikel keine Angabe."
NEAREST = "Nächstliegende Quellen"
MONTH_NAMES = ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
               "November", "Dezember"]

# Question words and English function words carry no content to match; German stop words are already gone.
_QUESTION_WORDS = frozenset(
    """wer wem wen wessen wann wo woher wohin warum weshalb wieso welch wieviel viele hoch groß gross stark
    laut konkret eigentlich insgesamt etwa genau
    how much many what which who whom whose when where why does did do is are was were the a an of to in for
    on by at and or from with its it this that according""".split()
)
_NUMBER_WORDS = {
    "ein": 1, "eine": 1, "einer": 1, "zwei": 2, "drei": 3, "vier": 4, "fünf": 5, "sechs": 6, "sieben": 7,
    "acht": 8, "neun": 9, "zehn": 10, "elf": 11, "zwölf": 12, "zwanzig": 20, "dreißig": 30, "hundert": 100,
    "tausend": 1000, "zehnmal": 10, "doppelt": 2,
}
_NUMBER = re.compile(r"(?<![\w.,])\d+(?:[.,]\d+)*(?![\w])|\b(?:" + "|".join(
    w for w in _NUMBER_WORDS if len(w) > 4) + r")\b", re.IGNORECASE)
_UNIT = re.compile(r"\b(?:Dollar|US-Dollar|Euro|Prozent|Milliarden?|Millionen?|Billionen?|Mrd|Mio|Nutzer|Menschen|"
                   r"Cent|Platz|mal|percent|billion|million)\b|%|\d-mal|zehnmal", re.IGNORECASE)
_YEAR = re.compile(r"(?<![\d.,])(19\d{2}|20\d{2})(?![\d.,]\d)")
_QUARTER_WORDS = {"ersten": 1, "zweiten": 2, "dritten": 3, "vierten": 4, "first": 1, "second": 2, "third": 3,
                  "fourth": 4, "1.": 1, "2.": 2, "3.": 3, "4.": 4}
_QUARTER = re.compile(r"\b(ersten|zweiten|dritten|vierten|first|second|third|fourth|[1-4]\.)\s+(?:Quartal|quarter)"
                      r"(?:s)?(?:\s+(?:of\s+)?(\d{4}))?|\bQ([1-4])(?:[ /]+(\d{4}))?|\b(Schlussquartal|Jahresendquartal)"
                      r"(?:\s+(\d{4}))?", re.IGNORECASE)
_THIS_YEAR = re.compile(r"\b(?:laufenden?|diese[mns]?|this|current)\s+(?:Geschäfts)?(?:jahr|year)s?\b", re.IGNORECASE)
_LAST_YEAR = re.compile(r"\b(?:vergangenen|letzten|abgelaufenen)\s+Jahr\b|\bVorjahr|\bvor einem Jahr\b|"
                        r"\bein Jahr (?:zuvor|davor)\b|\blast year\b", re.IGNORECASE)
_NEXT_YEAR = re.compile(r"\b(?:nächste[mns]?|kommende[mns]?)\s+Jahr\b|\bnext year\b", re.IGNORECASE)
_LAST_QUARTER = re.compile(r"\b(?:vergangenen|abgelaufenen|letzten|jüngsten|zurückliegenden)\s+Quartal", re.IGNORECASE)
_THIS_QUARTER = re.compile(r"\blaufenden?\s+Quartal", re.IGNORECASE)
_MONTH_YEAR = re.compile(r"\b(" + "|".join(MONTH_NUMBERS) + r"|Herbst|Frühjahr|Sommer|Winter|Anfang|Ende|Mitte)\s+(\d{4})\b",
                         re.IGNORECASE)
_SEASON_MONTHS = {"frühjahr": (3, 4, 5), "sommer": (6, 7, 8), "herbst": (9, 10, 11), "winter": (12, 1, 2),
                  "anfang": (1, 2, 3), "mitte": (5, 6, 7), "ende": (10, 11, 12)}
_NAME = re.compile(r"\b([A-ZÄÖÜ][a-zäöüß]+)\s+((?:[A-Z][a-z]?[A-Za-zäöüß]+|Li))\b")
_PERSON_CUE = re.compile(r"(?:chef|chefin|boss|gründer|CEO|Head|Analyst|analyst|manager|Präsident|sagte|erklärte|"
                         r"betonte|meinte|schätzte|argumentiert|konstatiert|zitiert|überzeugt|leitet|gehört)", re.UNICODE)
_DATE_CUE = re.compile(r"\b(?:" + "|".join(MONTH_NUMBERS) + r"|Montag|Dienstag|Mittwoch|Donnerstag|Freitag|Samstag|"
                       r"Sonntag|Ende des Jahres|Jahresende|seit|bis Ende|Anfang)\b|\b\d{1,2}\.\d{1,2}\.\d{4}\b|"
                       r"(?<!\d)(?:19|20)\d{2}(?!\d)", re.IGNORECASE)
_PLACE_CUE = re.compile(r"\b(?:in|aus|nach)\s+(?:der\s+|dem\s+)?[A-ZÄÖÜ][a-zäöüß]+")

_KINDS = [
    ("date", re.compile(r"\b(?:wann|seit wann|bis wann|an welchem (?:tag|wochentag|datum)|in welchem jahr|"
                        r"für welches jahr|when|which year|what year|what day)\b", re.IGNORECASE)),
    ("amount", re.compile(r"\b(?:wie ?viele?|wie hoch|wie groß|wie stark|um wie viel|wie teuer|wieviel|"
                          r"how much|how many|by how much|welche[nms]? (?:umsatz|gewinn|betrag|summe|kosten|"
                          r"verlust|ergebnis|anteil|wert)|mit welchen kosten|what (?:revenue|profit|loss|operating"
                          r"|amount|share))", re.IGNORECASE)),
    ("person", re.compile(r"\b(?:wer|wem|wen|welche[rm]? (?:analyst|manager|chef|person|politiker)|who|whom)\b",
                          re.IGNORECASE)),
    ("place", re.compile(r"\b(?:wo|woher|wohin|where)\b", re.IGNORECASE)),
]
_TIMELINE = re.compile(r"\b(?:entwickelt|entwicklung|verändert|veränderung|im lauf|im laufe|über die jahre|"
                       r"bis \d{4}|von \d{4} bis|am ende|ursprünglich|zuerst|vergleich|unterscheid|oder|"
                       r"mehr als|weniger als|change|changed|evolve|over time|compared|versus|vs\.?)\b",
                       re.IGNORECASE)
_NEWEST = re.compile(r"\b(?:aktuell|derzeit|zurzeit|momentan|jetzt|neueste[nm]?|jüngste[nm]?|dieses jahr|"
                     r"in diesem jahr|currently|latest|this year|now)\b", re.IGNORECASE)
_ENGLISH = re.compile(r"\b(?:the|how|what|who|does|did|is|are|was|much|many|of|and)\b", re.IGNORECASE)


def format_date(value: str | None, inferred: bool = False) -> str:
    """``2026-01-28`` → ``28.01.2026``, ``2025-07`` → ``Juli 2025``; inferred dates say so."""
    if not value:
        return "ohne Datum"
    parts = value.split("-")
    text = value
    if len(parts) == 3:
        text = f"{parts[2]}.{parts[1]}.{parts[0]}"
    elif len(parts) == 2 and parts[1].isdigit() and 1 <= int(parts[1]) <= 12:
        text = f"{MONTH_NAMES[int(parts[1]) - 1]} {parts[0]}"
    return f"{text} (Datum erschlossen)" if inferred else text


def _date_parts(value: str | None) -> tuple[int, int] | None:
    if not value:
        return None
    parts = value.split("-")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 6
    except ValueError:
        return None


def _quarter_periods(text: str, default_year: int | None) -> set[str]:
    periods = set()
    for match in _QUARTER.finditer(text):
        if match.group(1):
            number, year = _QUARTER_WORDS[match.group(1).lower()], match.group(2)
        elif match.group(3):
            number, year = int(match.group(3)), match.group(4)
        else:
            number, year = 4, match.group(6)
        year = int(year) if year else default_year
        if year:
            periods.add(f"{year}-q{number}")
    return periods


@dataclass(frozen=True)
class QuestionProfile:
    """What the question asks for: the kind of answer, its content terms, and its time."""

    text: str
    kind: str
    terms: tuple[str, ...]
    numbers: frozenset[str]
    years: frozenset[int]
    periods: frozenset[str]
    timeline: bool
    newest: bool
    english: bool


def profile_question(question: str, today: date) -> QuestionProfile:
    """Analyse a question once; ``today`` resolves "dieses Jahr"/"aktuell"."""
    kind = next((name for name, pattern in _KINDS if pattern.search(question)), "other")
    english = len(_ENGLISH.findall(question)) >= 2
    terms = tuple(dict.fromkeys(t for t in tokenize(question) if t not in _QUESTION_WORDS and not _YEAR.fullmatch(t)))
    years = {int(y) for y in _YEAR.findall(question)}
    newest = bool(_NEWEST.search(question))
    if _THIS_YEAR.search(question) or re.search(r"\bdieses jahr\b", question, re.IGNORECASE):
        years.add(today.year)
    span = re.search(r"\b(\d{4})\s*(?:bis|to|-|–)\s*(\d{4})\b", question)
    if span and int(span.group(1)) < int(span.group(2)) <= int(span.group(1)) + 20:
        years.update(range(int(span.group(1)), int(span.group(2)) + 1))
    default_year = min(years) if len(years) == 1 else None
    periods = _quarter_periods(question, default_year)
    for match in _MONTH_YEAR.finditer(question):
        word, year = match.group(1).lower(), int(match.group(2))
        months = (MONTH_NUMBERS[word],) if word in MONTH_NUMBERS else _SEASON_MONTHS[word]
        periods.update(f"{year}-{m:02d}" for m in months)
    numbers = frozenset(n.group(0).lower() for n in _NUMBER.finditer(question)) - {str(y) for y in years}
    return QuestionProfile(question, kind, terms, numbers, frozenset(years), frozenset(periods),
                           bool(_TIMELINE.search(question)) or len(years) > 1, newest, english)


@dataclass(frozen=True)
class SentenceFacts:
    """What one sentence of an article offers, computed once and cached by the answerer."""

    doc_id: str
    start: int
    end: int
    text: str
    tokens: frozenset[str]
    numbers: frozenset[str]
    has_unit: bool
    years: frozenset[int]
    periods: frozenset[str]
    names: tuple[str, ...]
    person_cue: bool
    date_cue: bool
    place_cue: bool
    heading: bool
    question: bool


def sentence_facts(article: Article, start: int, end: int) -> SentenceFacts:
    """Tokens, figures, names and the time a sentence speaks about (relative phrases resolved by the article date)."""
    text = article.text[start:end]
    years = {int(y) for y in _YEAR.findall(text)}
    periods = _quarter_periods(text, min(years) if len(years) == 1 else None)
    when = _date_parts(article.date)
    if when:
        year, month = when
        quarter = (month - 1) // 3 + 1
        if _THIS_YEAR.search(text):
            years.add(year)
        if _LAST_YEAR.search(text):
            years.add(year - 1)
        if _NEXT_YEAR.search(text):
            years.add(year + 1)
        if _LAST_QUARTER.search(text):
            last_year, last_quarter = (year, quarter - 1) if quarter > 1 else (year - 1, 4)
            years.add(last_year)
            periods.add(f"{last_year}-q{last_quarter}")
        if _THIS_QUARTER.search(text):
            years.add(year)
            periods.add(f"{year}-q{quarter}")
    numbers = frozenset(n.group(0).lower() for n in _NUMBER.finditer(text)) - {str(y) for y in years}
    stripped = text.rstrip("\"“”»«'’)")
    return SentenceFacts(
        doc_id=article.doc_id, start=start, end=end, text=text, tokens=frozenset(tokenize(text)), numbers=numbers,
        has_unit=bool(_UNIT.search(text)), years=frozenset(years), periods=frozenset(periods),
        names=tuple(" ".join(m.groups()) for m in _NAME.finditer(text)), person_cue=bool(_PERSON_CUE.search(text)),
        date_cue=bool(_DATE_CUE.search(text)), place_cue=bool(_PLACE_CUE.search(text)),
        heading=not stripped.endswith((".", "!", "?", ":")) and len(text.split()) < 10, question=stripped.endswith("?"))


@dataclass(frozen=True)
class Weights:
    """How the signals add up to a sentence's score; set by reading failures on the tuning half of the eval set."""

    lexical: float = 1.0
    kind: float = 0.5
    time: float = 0.6
    passage: float = 0.35
    heading: float = 0.3
    question: float = 0.5


@dataclass
class Candidate:
    """One sentence of a retrieved passage with its scores."""

    facts: SentenceFacts
    article: Article
    rank: int
    passage_score: float
    support: float = 0.0
    score: float = 0.0
    parts: dict[str, float] = field(default_factory=dict)


@dataclass
class Selection:
    """The extractive decision for one question: chosen sentences (best first) or an abstention."""

    profile: QuestionProfile
    candidates: list[Candidate]
    chosen: list[Candidate]
    abstained: bool

    @property
    def support(self) -> float:
        return self.candidates[0].support if self.candidates else 0.0


def calibrate_threshold(supports: Sequence[float], answerable: Sequence[bool], max_false_abstention: float = 0.1) -> float:
    """The support threshold that abstains on the most unanswerable questions while abstaining on at most
    ``max_false_abstention`` of the answerable ones; ties go to the lowest such threshold (the midpoint between
    two observed supports, so the value does not sit on a training point)."""
    if len(supports) != len(answerable) or not supports:
        raise ValueError("supports and answerable must be non-empty and of equal length")
    values = sorted(set(supports))
    cuts = [values[0] - 1e-6] + [(a + b) / 2 for a, b in zip(values, values[1:])] + [values[-1] + 1e-6]
    n_answerable = sum(answerable) or 1
    best, best_caught = cuts[0], -1
    for cut in cuts:
        false = sum(1 for s, a in zip(supports, answerable) if a and s < cut) / n_answerable
        caught = sum(1 for s, a in zip(supports, answerable) if not a and s < cut)
        if false <= max_false_abstention and caught > best_caught:
            best, best_caught = cut, caught
    return round(best, 4)


class ExtractiveAnswerer:
    """Question → cited answer from the retriever's passages, with no model beyond the retriever's."""

    def __init__(self, retriever: Retriever, settings: Settings, weights: Weights | None = None,
                 today: date | None = None) -> None:
        if settings.answer_max_sentences < 1:
            raise ValueError("answer_max_sentences must be at least 1")
        self.retriever = retriever
        self.settings = settings
        self.weights = weights or Weights()
        self.today = today
        self._idf: dict[str, float] = {}
        self._default_idf = 1.0
        self._spans: dict[str, list[tuple[int, int]]] = {}
        self._facts: dict[tuple[str, int, int], SentenceFacts] = {}

    @property
    def index(self):
        return self.retriever.index

    def warm_up(self) -> None:
        """Document frequencies of all stems over the index's passages (for IDF weights)."""
        if self._idf:
            return
        self.retriever.warm_up()
        counts: dict[str, int] = {}
        for chunk in self.index.chunks:
            for token in set(tokenize(chunk.indexed_text)):
                counts[token] = counts.get(token, 0) + 1
        total = max(len(self.index.chunks), 1)
        self._idf = {t: math.log((total + 1) / (c + 0.5)) for t, c in counts.items()}
        self._default_idf = math.log((total + 1) / 0.5)

    def idf(self, token: str) -> float:
        return self._idf.get(token, self._default_idf)

    def _sentences(self, hit: Hit) -> list[tuple[int, int]]:
        spans = self._spans.get(hit.doc_id)
        if spans is None:
            spans = self._spans[hit.doc_id] = sentence_spans(self.index.articles[hit.doc_id].text)
        return [(s, e) for s, e in spans if s < hit.end and e > hit.start]

    def _facts_of(self, article: Article, start: int, end: int) -> SentenceFacts:
        key = (article.doc_id, start, end)
        facts = self._facts.get(key)
        if facts is None:
            facts = self._facts[key] = sentence_facts(article, start, end)
        return facts

    def candidates(self, hits: Sequence[Hit]) -> list[Candidate]:
        """Distinct sentences of the best passages, each with its best passage's rank."""
        seen: dict[tuple[str, int], Candidate] = {}
        for rank, hit in enumerate(hits[: self.settings.answer_passages]):
            article = self.index.articles[hit.doc_id]
            for start, end in self._sentences(hit):
                if (hit.doc_id, start) not in seen:
                    seen[(hit.doc_id, start)] = Candidate(self._facts_of(article, start, end), article, rank, hit.score)
        return list(seen.values())

    def _lexical(self, profile: QuestionProfile, facts: SentenceFacts, article: Article) -> float:
        if not profile.terms:
            return 0.0
        title = set(tokenize(article.title))
        total = matched = 0.0
        for term in profile.terms:
            weight = self.idf(term)
            total += weight
            if term in facts.tokens:
                matched += weight
            elif len(term) >= 4 and any(len(t) >= 4 and (term in t or t in term) for t in facts.tokens):
                matched += 0.7 * weight
            elif term in title:
                matched += 0.3 * weight
        return matched / total

    @staticmethod
    def _kind(profile: QuestionProfile, facts: SentenceFacts) -> float:
        if profile.kind == "amount":
            fresh = facts.numbers - profile.numbers
            return 1.0 if fresh and facts.has_unit else 0.5 if fresh else 0.0
        if profile.kind == "person":
            question = profile.text.lower()
            names = [n for n in facts.names if n.split()[-1].lower() not in question]
            return 1.0 if names and facts.person_cue else 0.5 if names else 0.0
        if profile.kind == "date":
            return 1.0 if facts.date_cue else 0.0
        if profile.kind == "place":
            return 1.0 if facts.place_cue else 0.0
        return 0.5

    @staticmethod
    def _time(profile: QuestionProfile, facts: SentenceFacts, article: Article) -> float:
        if not profile.years and not profile.periods:
            return 0.0
        score = 0.0
        when = _date_parts(article.date)
        if profile.years:
            if facts.years & profile.years:
                score = len(facts.years & profile.years) / len(profile.years) if profile.timeline else 1.0
            elif facts.years:
                score = -0.5
            elif when and (when[0] in profile.years or (when[1] <= 3 and when[0] - 1 in profile.years)):
                score = 0.5
        quarters = {p for p in profile.periods if "-q" in p}
        if quarters:
            score += 0.5 if facts.periods & quarters else -0.25 if facts.periods else 0.0
        months = profile.periods - quarters
        if months and article.date and article.date[:7] in months:
            score += 0.5
        return score

    def score(self, profile: QuestionProfile, candidates: list[Candidate]) -> list[Candidate]:
        """Fill ``support`` and ``score`` and sort best first."""
        w = self.weights
        dates = sorted({c.article.date for c in candidates if c.article.date})
        for c in candidates:
            facts = c.facts
            parts = {"lexical": self._lexical(profile, facts, c.article), "kind": self._kind(profile, facts),
                     "time": self._time(profile, facts, c.article)}
            support = w.lexical * parts["lexical"] + w.kind * parts["kind"] + w.time * parts["time"]
            support -= w.heading * facts.heading + w.question * facts.question
            parts["passage"] = 1.0 - c.rank / max(self.settings.answer_passages, 1)
            score = support + w.passage * parts["passage"]
            if profile.newest and c.article.date and len(dates) > 1:
                parts["recency"] = dates.index(c.article.date) / (len(dates) - 1)
                score += 0.3 * parts["recency"]
            c.parts, c.support, c.score = parts, round(support, 4), round(score, 4)
        return sorted(candidates, key=lambda c: (-c.score, c.rank, c.facts.start))

    def _adds(self, candidate: Candidate, chosen: list[Candidate], profile: QuestionProfile) -> bool:
        """Whether a further sentence says something the chosen ones do not (another figure, date or article)."""
        if any(c.facts.doc_id == candidate.facts.doc_id and abs(c.facts.start - candidate.facts.start) < 2 for c in chosen):
            return False
        known = set().union(*(c.facts.numbers for c in chosen))
        fresh = candidate.facts.numbers - known - profile.numbers
        if profile.kind == "amount" or candidate.facts.numbers:
            return bool(fresh)
        return candidate.facts.doc_id not in {c.facts.doc_id for c in chosen} or profile.timeline

    def select(self, question: str, hits: Sequence[Hit]) -> Selection:
        """Score the sentences of ``hits`` and choose one to three of them, or abstain."""
        self.warm_up()
        profile = profile_question(question, self.today or date.today())
        ranked = self.score(profile, self.candidates(hits))
        if not ranked or ranked[0].support < self.settings.abstain_below:
            return Selection(profile, ranked, [], True)
        best = ranked[0]
        ratio = self.settings.answer_timeline_ratio if profile.timeline else self.settings.answer_extra_ratio
        chosen = [best]
        for candidate in ranked[1:]:
            if len(chosen) >= self.settings.answer_max_sentences or candidate.score < ratio * best.score:
                break
            if candidate.support >= self.settings.abstain_below and self._adds(candidate, chosen, profile):
                chosen.append(candidate)
        return Selection(profile, ranked, chosen, False)

    def run(self, question: str, id: str | None = None, hits: Sequence[Hit] | None = None) -> Answer:
        """The cited answer to ``question``; ``hits`` reuses a retrieval already done."""
        hits = list(hits) if hits is not None else self.retriever.run(question, k=self.settings.top_k)
        return compose(id, question, self.select(question, hits), hits, self.settings.abstain_sources)


def _cite(n: int, candidate: Candidate) -> Citation:
    facts, article = candidate.facts, candidate.article
    return Citation(n, facts.doc_id, article.title, article.date, facts.text, facts.start, facts.end,
                    candidate.score, article.date_inferred)


def _with_marker(text: str, n: int) -> str:
    """Put ``[n]`` before the sentence's final full stop, as in running German text."""
    text = text.rstrip()
    if text.endswith("."):
        return f"{text[:-1]} [{n}]."
    return f"{text} [{n}]"


def abstention(id: str | None, question: str, nearest: Sequence[Candidate], hits: Sequence[Hit]) -> Answer:
    """The German "no answer" text, with the nearest sentences listed and cited as such."""
    citations = [_cite(n, c) for n, c in enumerate(nearest, start=1)]
    text = REFUSAL
    if citations:
        text += f" {NEAREST}: " + "; ".join(
            f"[{c.n}] {c.title} ({format_date(c.date, c.date_inferred)})" for c in citations) + "."
    return Answer(id, question, text, True, citations, [Retrieved.from_hit(h) for h in hits])


def compose(id: str | None, question: str, selection: Selection, hits: Sequence[Hit], nearest: int = 2) -> Answer:
    """The answer text from the chosen sentences: verbatim, each with its ``[n]``, dated, as a timeline when the
    sources have different dates (newest first when the question asks for the current state)."""
    if selection.abstained:
        distinct = []
        for candidate in selection.candidates:
            if candidate.facts.doc_id not in {c.facts.doc_id for c in distinct}:
                distinct.append(candidate)
        return abstention(id, question, distinct[:nearest], hits)
    chosen = selection.chosen
    dates = {c.article.date for c in chosen}
    if len(dates) > 1:
        chosen = sorted(chosen, key=lambda c: (c.article.date or "", c.facts.start), reverse=selection.profile.newest)
    citations = [_cite(n, c) for n, c in enumerate(chosen, start=1)]
    if len(dates) == 1:
        (only,) = dates
        lead = f"Laut dem Artikel vom {format_date(only, chosen[0].article.date_inferred)}: " if only else ""
        text = lead + " ".join(_with_marker(c.facts.text, n) for n, c in enumerate(chosen, start=1))
    else:
        differ = selection.profile.kind == "amount" and len({frozenset(c.facts.numbers) for c in chosen}) > 1
        head = ("Die Quellen nennen je nach Datum unterschiedliche Zahlen"
                if differ else "Die Artikel berichten dazu zu verschiedenen Zeitpunkten")
        head += " (neueste zuerst):" if selection.profile.newest else " (zeitlich geordnet):"
        lines = [f"- {format_date(c.article.date, c.article.date_inferred)}: {_with_marker(c.facts.text, n)}"
                 for n, c in enumerate(chosen, start=1)]
        text = "\n".join([head, *lines])
    return Answer(id, question, text, False, citations, [Retrieved.from_hit(h) for h in hits])
