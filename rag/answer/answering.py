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

Abstention has rules with reasons (``gaps``: a name or figure the articles
never use, a year no sentence speaks about, no sentence on the question's topic
that gives the kind of thing asked for) and a threshold on how much of the
question the articles talk about at all, calibrated on the tuning half of the
eval set by ``calibrate_threshold`` (see tests/test_answering.py).

``GenerativeAnswerer`` (the local model or a server, as ``settings.answerer`` says) hands the best
sentences to a language model (``rag.answer.generation``) and keeps this extractive
answer as the fallback.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Callable, Iterator, Sequence

from rag.schema import Article
from rag.errors import RagError
from rag.answer.facts import SentenceFacts, date_parts, date_phrases, main_period, reporting_months, sentence_facts
from rag.answer.generation import Generator, Passage, make_generator, refusal_text
from rag.lang.de import format_date
from rag.lang.de import tokenize
from rag.answer.questions import MEASURE, QuestionProfile, compound_credit, name_words, profile_question
from rag.retrieve.retrieval import Retriever
from rag.schema import Hit
from rag.schema import Answer, Citation, Retrieved
from rag.ingest.sentences import sentence_spans
from rag.settings import Settings

_CAPITALISED = re.compile(r"(?<=[\w,;:–-] )[A-ZÄÖÜ][\w-]+")
_KIND_NAMES = {"amount": "a figure", "person": "a person", "date": "a date"}
# Capitalised words in a row (or a word with an inner capital, "xAI"): one name, "Reality Labs", "Donald Trump".
_NAME_GROUP = re.compile(r"(?<![\w-])(?:[A-ZÄÖÜ][\w-]*|[a-z]+[A-Z][\w-]*)(?:\s+(?:[A-ZÄÖÜ][\w-]*|[a-z]+[A-Z][\w-]*))*")
_SPECIFIC_MEASURE = re.compile(r"(?:umsatz|gewinn|nettogewinn|quartalsgewinn|verlust|investition|kapitalinvestition|"
                               r"nutz|borsenwert|einnahm)")
_ANAPHORIC = re.compile(r"(?:Das|Dies|Dieser|Diese|Dieses|Damit|Dabei)\b")
# A name in at least this share of the passages is what the corpus is about and may stay implicit in an answer.
PERVASIVE_SHARE = 0.5
# How far a sentence's time can be trusted: its own words, the paragraph it continues, its article's main period.
_TIME_TRUST = {"own": 1.0, "paragraph": 0.8, "article": 0.5, "none": 0.0}


@dataclass(frozen=True)
class Weights:
    """How the signals add up to a sentence's score. Set by hand while reading wrong answers on the whole eval set
    (so its correctness figures are optimistic; only the abstention threshold is calibrated on one half)."""

    lexical: float = 1.0
    missing: float = 0.5
    kind: float = 0.5
    time: float = 0.6
    passage: float = 0.35
    heading: float = 0.3
    question: float = 0.5
    recency: float = 0.3
    outside_passage: float = 0.5
    measure: float = 0.4


@dataclass(frozen=True)
class Term:
    """One question term ready for matching (see ``ExtractiveAnswerer.terms``)."""

    stem: str
    weight: float
    counts_missing: bool
    credits: dict[str, float]
    forms: frozenset[str]


@dataclass
class Candidate:
    """One sentence of a retrieved passage with its scores."""

    facts: SentenceFacts
    article: Article
    rank: int
    in_passage: bool = True
    support: float = 0.0
    score: float = 0.0
    parts: dict[str, float] = field(default_factory=dict)
    extension: SentenceFacts | None = None

    @property
    def span(self) -> tuple[int, int]:
        """The quoted span: the sentence, with the neighbour that holds the answer when there is one."""
        if self.extension is None:
            return self.facts.start, self.facts.end
        return min(self.facts.start, self.extension.start), max(self.facts.end, self.extension.end)

    @property
    def quote(self) -> str:
        start, end = self.span
        return self.article.text[start:end]


@dataclass
class Selection:
    """The extractive decision for one question: chosen sentences (best first) or an abstention."""

    profile: QuestionProfile
    candidates: list[Candidate]
    chosen: list[Candidate]
    abstained: bool
    support: float = 0.0
    reasons: list[str] = field(default_factory=list)


def calibrate_threshold(supports: Sequence[float], answerable: Sequence[bool], max_false_abstention: float = 0.05) -> float:
    """The support threshold that abstains on the most unanswerable questions while abstaining on at most
    ``max_false_abstention`` of the answerable ones; among equals, the fewest false abstentions, then the highest
    cut. Cuts lie midway between observed supports (the lowest halfway to zero), never on a training point."""
    if len(supports) != len(answerable) or not supports:
        raise ValueError("supports and answerable must be non-empty and of equal length")
    values = sorted(set(supports))
    cuts = [values[0] / 2 if values[0] > 0 else values[0] - 0.01] + [(a + b) / 2 for a, b in zip(values, values[1:])]
    n_answerable = max(sum(answerable), 1)
    best: tuple[int, int, float] | None = None
    for cut in cuts:
        false = sum(1 for s, a in zip(supports, answerable) if a and s < cut)
        caught = sum(1 for s, a in zip(supports, answerable) if not a and s < cut)
        if false / n_answerable <= max_false_abstention and (best is None or (caught, -false, cut) > best):
            best = (caught, -false, cut)
    return round(best[2], 4) if best else round(cuts[0], 4)


class ExtractiveAnswerer:
    """Question → cited answer from the retriever's passages, with no model beyond the retriever's."""

    def __init__(self, retriever: Retriever, settings: Settings, weights: Weights | None = None,
                 today: date | None = None) -> None:
        weights = weights or Weights()
        if any(value < 0 for value in vars(weights).values()):
            raise ValueError("answer weights must not be negative")
        self.retriever = retriever
        self.settings = settings
        self.weights = weights
        self.today = today
        self._idf: dict[str, float] = {}
        self._default_idf = 1.0
        self._pervasive_idf = 0.0
        self._facts: dict[str, list[SentenceFacts]] = {}
        self._titles: dict[str, frozenset[str]] = {}
        self._compounds: dict[str, dict[str, float]] = {}

    @property
    def index(self):
        return self.retriever.index

    def warm_up(self) -> None:
        """IDF weights of all stems from the BM25 index's document frequencies (nothing is re-tokenised)."""
        if self._idf:
            return
        self.retriever.warm_up()
        total = max(len(self.index.chunks), 1)
        self._idf = {t: math.log((total + 1) / (c + 0.5)) for t, c in self.index.bm25.document_frequencies().items() if c}
        self._default_idf = math.log((total + 1) / 0.5)
        self._pervasive_idf = math.log((total + 1) / (PERVASIVE_SHARE * total + 0.5))

    def sentences(self, doc_id: str) -> list[SentenceFacts]:
        """Every sentence of an article with its facts, each read in the context of its paragraph (cached)."""
        facts = self._facts.get(doc_id)
        if facts is None:
            article = self.index.articles[doc_id]
            own = [sentence_facts(article, start, end) for start, end in sentence_spans(article.text)]
            article_time = main_period(own)
            facts, previous, intro, paragraph = [], None, None, 0
            for position, current in enumerate(own):
                same_paragraph = previous is not None and "\n" not in article.text[previous.end:current.start]
                paragraph += 0 if same_paragraph else 1
                if not same_paragraph and intro is not None and not current.text.endswith((".", "!", "?")):
                    context = intro  # an item of a list introduced by "… Und zwar:" reads on from its introduction
                else:
                    context, intro = (previous if same_paragraph else None), None
                previous = replace(current.read_after(context, article_time), position=position, paragraph=paragraph)
                facts.append(previous)
                if previous.text.endswith(":"):
                    intro = previous
            self._facts[doc_id] = facts
        return facts

    def candidates(self, hits: Sequence[Hit], passages: int, profile: QuestionProfile) -> list[Candidate]:
        """Distinct sentences of the best ``passages`` passages, each with its best passage's rank; then the
        other sentences of their articles (a figure often sits one chunk away from the words that retrieved it).

        A question about a period ("Ende 2025", "im Juli 2025") also reads the lower-ranked passages of articles
        published in or reporting on that period: the retriever does not know dates, and a report on the fourth
        quarter may rank below older articles that use the same words."""
        seen: dict[tuple[str, int], Candidate] = {}
        article_rank: dict[str, int] = {}
        months = reporting_months(profile.periods)
        timely = [(rank, hit) for rank, hit in enumerate(hits) if rank >= passages
                  and (self.index.articles[hit.doc_id].date or "")[:7] in months]
        for rank, hit in [*enumerate(hits[:passages]), *timely]:
            article_rank.setdefault(hit.doc_id, rank)
            for facts in self.sentences(hit.doc_id):
                if facts.start < hit.end and facts.end > hit.start and (hit.doc_id, facts.start) not in seen:
                    seen[(hit.doc_id, facts.start)] = Candidate(facts, self.index.articles[hit.doc_id], rank)
        for doc_id, rank in article_rank.items():
            for facts in self.sentences(doc_id):
                if (doc_id, facts.start) not in seen:
                    seen[(doc_id, facts.start)] = Candidate(facts, self.index.articles[doc_id], rank, False)
        return list(seen.values())

    def _related(self, form: str) -> dict[str, float]:
        """The index's words that share a compound part or stem with ``form``, with their credit (cached)."""
        related = self._compounds.get(form)
        if related is None:
            related = self._compounds[form] = {t: c for t in self._idf if t != form and (c := compound_credit(form, t))}
        return related

    def known(self, forms: tuple[tuple[str, float], ...]) -> bool:
        """Whether the index has the term at all: a full form, or a word it heads or shares a stem with."""
        return any(f in self._idf or max(self._related(f).values(), default=0.0) >= 0.7 for f, c in forms if c == 1.0)

    def _weight(self, forms: tuple[tuple[str, float], ...]) -> float:
        """A term's IDF: that of its most common full form in the index ("Metas" weighs as "Meta", "revenue" as
        "Umsatz"), the largest when no form occurs (a word the articles never use)."""
        known = [self._idf[f] for f, credit in forms if credit == 1.0 and f in self._idf]
        known += [self._idf[t] for f, credit in forms if credit == 1.0 for t, c in self._related(f).items() if c >= 0.9]
        return min(known, default=self._default_idf)

    def terms(self, profile: QuestionProfile) -> list[Term]:
        """The question's terms prepared for matching: weight, whether a missing one counts, and the credit of
        every index word that stands for it (the word itself, its translation, synonyms, compound relatives)."""
        table = []
        for term, forms in profile.terms:
            credits: dict[str, float] = {}
            for form, credit in forms:
                for token, related in self._related(form).items():
                    credits[token] = max(credits.get(token, 0.0), credit * related)
            for form, credit in forms:
                credits[form] = max(credits.get(form, 0.0), credit)
            table.append(Term(term, self._weight(forms), term in profile.key_terms and self.known(forms), credits,
                              frozenset(form for form, _ in forms)))
        return table

    @staticmethod
    def _match(term: Term, facts: SentenceFacts, title: frozenset[str]) -> float:
        """How well the sentence holds one question term: the word itself 1 (its translation too, synonyms 0.8),
        within a compound or by a shared stem 0.7 or 0.3, in the sentence before 0.4, in the article's title 0.3."""
        found = max((term.credits[t] for t in facts.tokens if t in term.credits), default=0.0)
        if found:
            return found
        if term.forms & facts.context:
            return 0.4
        return 0.3 if term.forms & title else 0.0

    def _title(self, article: Article) -> frozenset[str]:
        """The stems of an article's title (cached)."""
        title = self._titles.get(article.doc_id)
        if title is None:
            title = self._titles[article.doc_id] = frozenset(tokenize(article.title))
        return title

    def _lexical(self, terms: list[Term], facts: SentenceFacts, article: Article) -> tuple[float, float]:
        """IDF-weighted coverage of the question's terms, and the largest IDF share of a key term that the index
        knows but the sentence lacks (a sentence about Meta where Amazon was asked)."""
        if not terms:
            return 0.0, 0.0
        title = self._title(article)
        total = matched = missing = 0.0
        for term in terms:
            found = self._match(term, facts, title)
            total += term.weight
            matched += term.weight * found
            if term.counts_missing:
                missing = max(missing, term.weight * (1.0 - found))
        return matched / total, missing / self._default_idf

    @staticmethod
    def _kind(profile: QuestionProfile, facts: SentenceFacts) -> float:
        """Whether the sentence holds the kind of thing asked for (a figure not already in the question, …)."""
        if profile.kind == "amount":
            fresh = facts.numbers - profile.numbers
            if profile.change and fresh and not facts.change_cue:
                return 0.5  # a level where a change was asked: the change may sit in the next sentence
            return 1.0 if fresh and facts.has_unit else 0.5 if fresh else 0.0
        if profile.kind == "person":
            question = profile.text.lower()
            names = [(n, at) for n, at in facts.names if n.split()[-1].lower() not in question]
            if not names:
                return 0.0
            if profile.roles:  # "Wer ist die Finanzchefin …?" wants the name next to "Finanzchefin"
                text = facts.text.lower()
                near = any(abs(at - m.start()) <= 40 for role in profile.roles for m in re.finditer(re.escape(role), text)
                           for _, at in names)
                return 1.0 if near else 0.5
            return 1.0 if facts.person_cue else 0.5
        if profile.kind == "date":
            return 1.0 if facts.date_cue else 0.0
        if profile.kind == "place":
            return 1.0 if facts.place_cue else 0.0
        if profile.kind == "entity":
            question = profile.text.lower()
            return 1.0 if any(w.lower() not in question for w in _CAPITALISED.findall(facts.text)) else 0.0
        return 0.5

    @staticmethod
    def _time(profile: QuestionProfile, facts: SentenceFacts, article: Article) -> float:
        """How well the sentence's time fits the question's, in [-0.5, 1.3]: 1 for the asked year named or
        resolved in the sentence, less when read from its paragraph or article (``_TIME_TRUST``), 0.4 when only a
        figure of a year earlier fits, 0.5 when only the article's date does, negative for other years; a matching quarter or
        publication month adds 0.3, another quarter (or a whole year where a quarter was asked) takes 0.3 off."""
        if not profile.years and not profile.periods:
            return 0.0
        score = 0.0
        earlier_years, earlier_periods = facts.earlier()
        if profile.years:
            common = facts.years & profile.years
            if common:
                score = (len(common) / len(profile.years) if profile.timeline else 1.0) * _TIME_TRUST[facts.time_source]
            elif earlier_years & profile.years:
                score = 0.4
            elif facts.years:
                score = -0.5 * _TIME_TRUST[facts.time_source]
            else:
                when = date_parts(article.date)
                score = 0.5 if when and (when[0] in profile.years or (when[1] <= 3 and when[0] - 1 in profile.years)) else 0.0
        quarters = {p for p in profile.periods if "-q" in p}
        if quarters and (facts.periods & quarters or earlier_periods & quarters):
            score += 0.3
        elif quarters and (facts.periods or facts.time_source == "own"):
            score -= 0.3  # another quarter, or a whole year ("Für dieses Jahr …") where a quarter was asked
        months = {p.split(":", 1)[1] for p in profile.periods if p.startswith("month:")}
        if months and article.date and article.date[:7] in months:
            score = max(score, 0.5) + 0.3  # "im Januar 2026" may mean the report then, on the quarter before
        return min(score, 1.3)

    @staticmethod
    def _other_measure(measures: list[Term], facts: SentenceFacts) -> float:
        """1 when the sentence gives another business figure than the one asked for and not the asked one
        (revenue where profit was asked: the two sit side by side in every quarterly report), else 0."""
        if not measures:
            return 0.0
        if any(t.credits.get(token, 0.0) >= 0.7 for t in measures for token in facts.tokens):
            return 0.0
        return 1.0 if any(_SPECIFIC_MEASURE.match(token) for token in facts.tokens) else 0.0

    def _answering_neighbour(self, profile: QuestionProfile, facts: SentenceFacts) -> SentenceFacts | None:
        """The sentence before or after in the same paragraph (or the quotation that follows) when it holds what
        the question asks for and this one does not ("… klang die Finanzchefin von Microsoft zurückhaltender.
        „…“, sagte Amy Hood.")."""
        sentences = self.sentences(facts.doc_id)
        text = facts.text.lower()
        names_role = profile.kind == "person" and any(role in text for role in profile.roles)
        for position in (facts.position + 1, facts.position - 1):
            if not 0 <= position < len(sentences):
                continue
            neighbour = sentences[position]
            # The quote that follows, or a sentence that refers back to this one ("Das entspricht einem Plus …").
            continues = position > facts.position and (neighbour.text.startswith(("„", '"', "»"))
                                                       or _ANAPHORIC.match(neighbour.text) is not None)
            if neighbour.paragraph == facts.paragraph or continues:
                kind = self._kind(profile, neighbour)
                if kind >= 1.0 or (names_role and kind >= 0.5):
                    return neighbour
        return None

    def score(self, profile: QuestionProfile, terms: list[Term], candidates: list[Candidate],
              passages: int) -> list[Candidate]:
        """Fill ``support`` and ``score`` and sort best first."""
        w = self.weights
        measures = _asked_measures(profile, terms)
        dates = sorted({c.article.date for c in candidates if c.article.date})
        for c in candidates:
            facts = c.facts
            lexical, missing = self._lexical(terms, facts, c.article)
            parts = {"lexical": lexical, "missing": missing, "kind": self._kind(profile, facts),
                     "time": self._time(profile, facts, c.article), "measure": self._other_measure(measures, facts)}
            if parts["kind"] < 1.0 and profile.kind in _KIND_NAMES:
                neighbour = self._answering_neighbour(profile, facts)
                if neighbour is not None:
                    c.extension, parts["kind"] = neighbour, 0.8
            support = (w.lexical * lexical - w.missing * missing + w.kind * parts["kind"] + w.time * parts["time"]
                       - w.heading * facts.heading - w.question * facts.question - w.measure * parts["measure"])
            parts["passage"] = max(1.0 - c.rank / passages, 0.0) * (1.0 if c.in_passage else w.outside_passage)
            score = support + w.passage * parts["passage"]
            if profile.newest and c.article.date and len(dates) > 1:
                parts["recency"] = dates.index(c.article.date) / (len(dates) - 1)
                score += w.recency * parts["recency"]
            c.parts, c.support, c.score = parts, round(support, 4), round(score, 4)
        return sorted(candidates, key=lambda c: (-c.score, c.rank, c.facts.start))

    @staticmethod
    def _adds(candidate: Candidate, chosen: list[Candidate], profile: QuestionProfile) -> bool:
        """Whether a further sentence says something the chosen ones do not: another figure for an amount, else
        another article or year."""
        if any(c.facts.doc_id == candidate.facts.doc_id and c.facts.start == candidate.facts.start for c in chosen):
            return False
        known = set().union(*(c.facts.numbers for c in chosen))
        if profile.kind == "amount":
            return bool(candidate.facts.numbers - known - profile.numbers)
        years = set().union(*(c.facts.years for c in chosen))
        return candidate.facts.doc_id not in {c.facts.doc_id for c in chosen} or bool(candidate.facts.years - years)

    @staticmethod
    def _same_thing(candidate: Candidate, best: Candidate, profile: QuestionProfile) -> bool:
        """Whether a sentence is about what the best one is about, as far as the question can tell: as close to
        it in kind of answer, time and words (a timeline allows other wording: reports of other dates differ)."""
        words = 0.65 if profile.timeline else 0.8
        return (candidate.parts["kind"] >= best.parts["kind"] and candidate.parts["time"] >= best.parts["time"] - 0.25
                and candidate.parts["lexical"] >= words * best.parts["lexical"]
                and candidate.parts["measure"] <= best.parts["measure"])

    def select(self, question: str, hits: Sequence[Hit]) -> Selection:
        """Score the sentences of ``hits`` and choose one to three of them, or abstain.

        A question over several years ("von 2024 bis 2026") gets the best sentence for each year. A timeline or
        a figure asked for a year gets, besides the best sentence, the best one about the same thing from each
        article of another date (how the figure changed, or sources that disagree). Any question may get a
        runner-up that is nearly as good, at least as well placed in time and says something new.
        """
        self.warm_up()
        profile = profile_question(question, self.today or date.today())
        # A timeline gathers figures from several articles, so it looks at twice as many passages.
        passages = self.settings.answer_passages * (2 if profile.timeline else 1)
        terms = self.terms(profile)
        ranked = self.score(profile, terms, self.candidates(hits, passages, profile), passages)
        limit = self.settings.answer_max_sentences
        reasons, support = self.gaps(profile, terms, ranked), self.support(ranked)
        if reasons:
            return Selection(profile, ranked, [], True, support, reasons)
        best = ranked[0]
        floor = self.settings.answer_timeline_ratio * best.score
        eligible = [c for c in ranked if c.support > 0 and c.score >= floor]
        chosen: list[Candidate] = []
        if profile.timeline and len(profile.years) > 1:
            for year in sorted(profile.years):
                pick = next((c for c in eligible if year in c.facts.years and c.facts.time_source != "article"
                             and (not chosen or self._adds(c, chosen, profile))), None)
                if pick and pick not in chosen and len(chosen) < limit:
                    chosen.append(pick)
        chosen = chosen or [best]
        if profile.timeline or (profile.kind == "amount" and profile.years):
            for candidate in eligible:
                if len(chosen) >= limit:
                    break
                if (candidate.article.date not in {c.article.date for c in chosen} and self._same_thing(candidate, best, profile)
                        and self._adds(candidate, chosen, profile)):
                    chosen.append(candidate)
        for candidate in eligible:
            if len(chosen) >= limit:
                break
            if (candidate.score >= self.settings.answer_extra_ratio * best.score
                    and candidate.parts["time"] >= best.parts["time"] and candidate.parts["measure"] <= best.parts["measure"]
                    and self._adds(candidate, chosen, profile)):
                chosen.append(candidate)
        return Selection(profile, ranked, chosen, False, support)

    def gaps(self, profile: QuestionProfile, terms: list[Term], ranked: list[Candidate]) -> list[str]:
        """Why the articles cannot answer, if they cannot (empty: they may). Each rule was kept only if it caught
        unanswerable eval questions without refusing an answerable one:

        - an essential word (figure, counted thing, name) the index never uses: "Apple", "Strom", "Llama 5";
        - an asked year no candidate sentence speaks about: "2027";
        - no sentence on the question's topic gives the kind of thing asked for (figure, person, date);
        - no sentence on the topic fits the asked year ("Amazon 2026" where Amazon appears only for 2025);
        - the articles cover too little of the question at all (``support`` below ``abstain_below``).
        """
        reasons = []
        unknown = [term for term, forms in profile.terms if term in profile.named and not self.known(forms)]
        decisive = [term for term in unknown if term in profile.essential]
        if decisive:
            reasons.append(f"the articles never mention {', '.join(w for t in decisive for w in _words_for(profile, t))}")
        spoken = set()
        for candidate in ranked:
            if candidate.facts.time_source != "article":
                spoken |= candidate.facts.years | candidate.facts.earlier()[0]
        if profile.years and not profile.years & spoken:
            reasons.append(f"no sentence speaks about {', '.join(map(str, sorted(profile.years)))}")
        on_topic = self.on_topic(ranked)
        if profile.kind in _KIND_NAMES and on_topic and not any(c.parts["kind"] >= 0.5 for c in on_topic):
            reasons.append(f"no sentence about this gives {_KIND_NAMES[profile.kind]}")
        elif profile.kind in _KIND_NAMES and ranked and ranked[0].parts["kind"] <= 0:
            reasons.append(f"the best sentence gives no {_KIND_NAMES[profile.kind].split()[-1]}")
        if ranked:
            absent = self.absent_names(profile, {term.stem: term for term in terms}, ranked[0])
            if absent:
                reasons.append(f"the best sentence is not about {', '.join(absent)}")
            other = self.other_measure(profile, terms, ranked[0])
            if other:
                reasons.append(f"the best sentence gives no {other}")
        if profile.years and not profile.timeline and on_topic and not any(self._in_time(c, profile) for c in on_topic):
            reasons.append(f"no sentence about this speaks about {', '.join(map(str, sorted(profile.years)))}")
        support = self.support(ranked)
        if support < self.settings.abstain_below:
            reasons.append(f"the question's support {support:.2f} is below {self.settings.abstain_below}")
        return reasons

    def absent_names(self, profile: QuestionProfile, terms: dict[str, Term], best: Candidate) -> list[str]:
        """The question's names (and counted things) of which the best sentence says nothing: "Google" where the
        best sentence reports Meta's revenue.

        Only for questions after a figure, person or date. A name that the articles use almost everywhere (the
        corpus's own subject, "Meta") may stay implicit; measures ("Geld", "Umsatz") are the kind rule's business.
        Capitalised words that the best sentence's article has as one phrase ("Donald Trump") form one name, of
        which one word suffices; other capitalised neighbours ("Googles Umsatz") are separate words.
        Calibrated on the eval set (see ``tests/test_answering.py``).
        """
        if profile.kind not in _KIND_NAMES:
            return []
        forms = dict(profile.terms)
        title = self._title(best.article)
        text = best.article.text.casefold()
        absent = []
        for run in _NAME_GROUP.findall(profile.text):
            words = [w for w in run.split() if tokenize(w)]  # without stop words ("Hat Meta AI …?")
            phrase = " ".join(words)
            groups = [phrase] if len(words) > 1 and phrase.casefold() in text else words
            for group in groups:
                stems = [t for t in tokenize(group) if t in profile.essential and t in terms and not t[:1].isdigit()
                         and not MEASURE.match(t)]
                if not stems or any(self._weight(forms[t]) <= self._pervasive_idf for t in stems):
                    continue
                if not any(self._mentions(terms[t], best, title) for t in stems):
                    absent.append(group)
        return absent

    def other_measure(self, profile: QuestionProfile, terms: list[Term], best: Candidate) -> str | None:
        """The business figure asked for ("Umsatz", "revenue", "Gewinn") when the best sentence gives another one
        ("Amazon's revenue" answered with Amazon's investment plans); generic words ("Geld", "Kosten") do not
        count."""
        title = self._title(best.article)
        for term in _asked_measures(profile, terms):
            if not self._mentions(term, best, title):
                return _words_for(profile, term.stem)[0]
        return None

    def _mentions(self, term: Term, best: Candidate, title: frozenset[str]) -> bool:
        """Whether the best sentence (with its extension), the sentence just before it or the article's title
        names ``term``: "Der Bereich verbuchte …" right after "die Sparte Reality Labs" is about Reality Labs, but
        "… investierte Meta …" in a paragraph that once lists xAI among the competitors is not about xAI."""
        sentences = [f for f in (best.facts, best.extension) if f is not None]
        if best.facts.position > 0:
            sentences.append(self.sentences(best.facts.doc_id)[best.facts.position - 1])
        return any(term.credits.keys() & f.tokens for f in sentences) or bool(term.forms & title)

    @staticmethod
    def _in_time(candidate: Candidate, profile: QuestionProfile) -> bool:
        """Whether a sentence may speak about the question's year: its time fits, or its article is from that
        year and the sentence names no other year of its own."""
        when = date_parts(candidate.article.date)
        own_years = candidate.facts.years if candidate.facts.time_source == "own" else frozenset()
        return candidate.parts["time"] >= 0.5 or bool(when and when[0] in profile.years and not own_years - profile.years)

    @staticmethod
    def on_topic(ranked: list[Candidate]) -> list[Candidate]:
        """The sentences nearly as close to the question's words as the closest one (60 %)."""
        top = max((c.parts["lexical"] for c in ranked), default=0.0)
        return [c for c in ranked if top > 0 and c.parts["lexical"] >= 0.6 * top]

    @staticmethod
    def support(ranked: list[Candidate]) -> float:
        """How much of the question the articles talk about at all: the best lexical coverage of any candidate.

        Why not the full sentence score: near-miss questions ("Wie viel investiert Amazon 2026?") score as high
        as answerable ones; the rules of ``gaps`` catch what can be caught of those, and this threshold catches
        questions off the articles' topics ("Welche Farbe hat der Himmel?")."""
        return round(max((c.parts["lexical"] for c in ranked), default=0.0), 4)

    def run(self, question: str, id: str | None = None, hits: Sequence[Hit] | None = None) -> Answer:
        """The cited answer to ``question``; ``hits`` reuses a retrieval already done."""
        hits = list(hits) if hits is not None else self.retriever.run(question, k=self.settings.top_k)
        return compose(id, question, self.select(question, hits), hits, self.settings.abstain_sources)


def _asked_measures(profile: QuestionProfile, terms: list[Term]) -> list[Term]:
    """The specific business figures a figure question asks for ("Umsatz", "profit"; not "Geld" or "Kosten")."""
    if profile.kind != "amount":
        return []
    return [t for t in terms if any(_SPECIFIC_MEASURE.match(form) for form in t.forms)]


def _words_for(profile: QuestionProfile, stem: str) -> list[str]:
    """The question's own words behind a stem ("Googles" for "googl"), for messages; the stem when none is."""
    return [w for w in re.findall(r"[\w-]+", profile.text) if stem in tokenize(w)] or [stem]


def _cite(n: int, candidate: Candidate) -> Citation:
    article = candidate.article
    start, end = candidate.span
    return Citation(n, article.doc_id, article.title, article.date, candidate.quote, start, end,
                    candidate.score, article.date_inferred)


def _with_marker(text: str, n: int) -> str:
    """The quote on one line with ``[n]`` before its final full stop, as in running German text."""
    text = " ".join(text.split())
    if text.endswith("."):
        return f"{text[:-1]} [{n}]."
    return f"{text} [{n}]"


def abstention(id: str | None, question: str, nearest: Sequence[Candidate], hits: Sequence[Hit],
               reason: str | None = None) -> Answer:
    """The German "no answer" text, with the nearest sentences listed and cited as such."""
    citations = [_cite(n, c) for n, c in enumerate(nearest, start=1)]
    return Answer(id, question, refusal_text(citations), True, citations, [Retrieved.from_hit(h) for h in hits],
                  abstain_reason=reason)


def compose(id: str | None, question: str, selection: Selection, hits: Sequence[Hit], nearest: int = 2) -> Answer:
    """The answer text from the chosen sentences: verbatim, each with its ``[n]``, dated, as a timeline when the
    sources have different dates (newest first when the question asks for the current state)."""
    if selection.abstained:
        distinct = []
        for candidate in selection.candidates:
            if candidate.facts.doc_id not in {c.facts.doc_id for c in distinct}:
                distinct.append(candidate)
        return abstention(id, question, distinct[:nearest], hits, "; ".join(selection.reasons) or None)
    chosen = selection.chosen
    dates = {c.article.date for c in chosen}
    if len(dates) > 1:
        chosen = sorted(chosen, key=lambda c: (c.article.date or "", min(c.facts.years, default=0), c.facts.start),
                        reverse=selection.profile.newest)
    citations = [_cite(n, c) for n, c in enumerate(chosen, start=1)]
    if len(dates) == 1:
        (only,) = dates
        lead = f"Laut dem Artikel vom {format_date(only, chosen[0].article.date_inferred)}: " if only else ""
        text = lead + " ".join(_with_marker(c.quote, n) for n, c in enumerate(chosen, start=1))
    else:
        differ = selection.profile.kind == "amount" and len({frozenset(c.facts.numbers) for c in chosen}) > 1
        head = ("Die Quellen nennen je nach Datum unterschiedliche Zahlen"
                if differ else "Die Artikel berichten dazu zu verschiedenen Zeitpunkten")
        head += " (neueste zuerst):" if selection.profile.newest else " (zeitlich geordnet):"
        lines = [f"- {format_date(c.article.date, c.article.date_inferred)}: {_with_marker(c.quote, n)}"
                 for n, c in enumerate(chosen, start=1)]
        text = "\n".join([head, *lines])
    return Answer(id, question, text, False, citations, [Retrieved.from_hit(h) for h in hits])


def generation_passages(selection: Selection, count: int) -> list[Passage]:
    """What a language model is given: the chosen sentences first, then the next best ones, without overlaps,
    numbered from 1."""
    picked: list[Candidate] = []
    for candidate in [*selection.chosen, *selection.candidates]:
        start, end = candidate.span
        if len(picked) >= count:
            break
        if all(c.article.doc_id != candidate.article.doc_id or c.span[1] <= start or end <= c.span[0] for c in picked):
            picked.append(candidate)
    return [Passage(n, c.article.doc_id, c.article.title, c.article.date, c.article.date_inferred, *c.span,
                    c.quote, c.score) for n, c in enumerate(picked, start=1)]


def agreement(selection: Selection) -> dict:
    """What the generated answer must keep of the extractive evidence (see ``grounding.check_answer``): for a
    figure (or a business measure, "What was Meta's quarterly profit?"), every figure of the best sentence and one
    of each further one (every figure of each, for a timeline: "how did it change" needs each date's figure); for
    a date, a figure and a date phrase ("bis Ende des Jahres") of the best sentence; for a person, its name; for an
    organisation or product, one of the names it adds to the question."""
    profile, best = selection.profile, selection.chosen[0]
    if profile.kind == "amount" or (profile.kind == "other" and MEASURE.search(profile.text)):
        if profile.timeline:
            return {"all_figures": [c.quote for c in selection.chosen]}
        return {"share_figures": [c.quote for c in selection.chosen[1:]], "all_figures": [best.quote]}
    if profile.kind == "date":
        phrases = date_phrases(best.quote)
        return {"share_figures": [best.quote], **({"mention": [phrases]} if phrases else {})}
    if profile.kind == "person":
        names = [*best.facts.names, *(best.extension.names if best.extension else ())]
        return {"mention": [[name.split()[-1] for name, _ in names]]} if names else {}
    if profile.kind == "entity":
        asked = profile.text.lower()
        names = [w for w in name_words(best.quote) if w.lower() not in asked]
        return {"mention": [names]} if names else {}
    return {}


def generate(generator: Generator, selection: Selection, question: str, hits: Sequence[Hit],
             fallback: Callable[[], Answer], id: str | None = None) -> Iterator[str | Answer]:
    """A language model's answer from the extractive selection's sentences, checked against them. A question the
    rules recognise as unanswerable is declined without asking the model (``fallback()``). So is an open question
    whose answer nothing could check ("Welche Rolle spielen …?", "Was berichten die Artikel …?"): it gets the
    verbatim sentences, because a 1.5B model's summary of them dropped the facts in most eval questions of that
    kind. A refusal by the model does not hide sentences the rules found. Used by the generative answerers and the
    chat alike, so the chat gives what ``rag eval`` measures."""
    if selection.abstained:
        yield fallback()
        return
    agree = agreement(selection)
    if not agree and selection.profile.kind == "other":
        answer = fallback()
        answer.fallback_reason = "Offene Frage: die wörtlichen Belege antworten (das Sprachmodell schreibt nur prüfbare Antworten)."
        yield answer
        return
    for piece in generator.stream(question, hits, generation_passages(selection, generator.settings.llm_passages),
                                  fallback, id, agree):
        if isinstance(piece, Answer) and piece.abstained:
            piece = fallback()
            piece.fallback_reason = "Das Sprachmodell fand in seinen Textstellen keine Antwort; die Belege antworten."
        yield piece


class GenerativeAnswerer:
    """Answers written by a language model from the extractive answerer's best sentences, then checked.

    Why these passages: the extractive ranking already found the sentences that answer; giving the model four
    or five of them (not whole chunks) keeps the prompt near 400 tokens, so the local model starts writing
    within seconds on two cores. A question the extractive rules recognise as unanswerable (a year or name the
    articles never mention) is declined without asking the model. When the generated answer fails a grounding
    check, or the model or server fails, the extractive answer is returned and ``fallback_reason`` says why.
    """

    def __init__(self, retriever: Retriever, settings: Settings, generator: Generator | None = None,
                 log: Callable[[str], None] = lambda m: None) -> None:
        if settings.answerer not in ("llm", "server"):
            raise ValueError("a generative answerer needs settings.answerer 'llm' or 'server'")
        self.settings = settings
        self.extractive = ExtractiveAnswerer(retriever, settings)
        self.generator = generator or make_generator(settings, log)

    @property
    def retriever(self) -> Retriever:
        return self.extractive.retriever

    def warm_up(self) -> None:
        self.extractive.warm_up()
        self.generator.warm_up()

    def stream(self, question: str, id: str | None = None, hits: Sequence[Hit] | None = None) -> Iterator[str | Answer]:
        """The generated text in pieces as it is written, then the final ``Answer``."""
        hits = list(hits) if hits is not None else self.retriever.run(question, k=self.settings.top_k)
        selection = self.extractive.select(question, hits)

        def extractive() -> Answer:
            return compose(id, question, selection, hits, self.settings.abstain_sources)

        try:
            yield from generate(self.generator, selection, question, hits, extractive, id)
        except RagError as err:  # the server is down, the model failed: the extractive answer stands
            answer = extractive()
            answer.fallback_reason = str(err)
            yield answer

    def run(self, question: str, id: str | None = None, hits: Sequence[Hit] | None = None) -> Answer:
        final = None
        for piece in self.stream(question, id, hits):
            final = piece
        return final


def make_answerer(retriever: Retriever, settings: Settings, log: Callable[[str], None] = lambda m: None):
    """The answerer ``settings.answerer`` names, ready to ``run``."""
    if settings.answerer == "extractive":
        return ExtractiveAnswerer(retriever, settings)
    return GenerativeAnswerer(retriever, settings, log=log)
