"""Answers with verifiable citations: pick the answering sentences with a learned selector, quote them verbatim with
their short answer first, or abstain.

Why extractive by default: no reader model for German exists offline (see MODELS.md), and a verbatim quote cannot
misstate a figure. The candidate sentences of the best passages are scored by ``rag.answer.selection`` (a logistic
regression over domain-general signals, trained on XQuAD-de's tuning half and the tuning half of our eval set); a
question-level classifier on raw scores decides whether the articles hold an answer at all, and ``confidence`` is the
calibrated probability that the answer is right. The short answer is the best span of the chosen quote
(``rag.answer.spans``).

Why the selector's best sentence is not re-ranked by what the span scorer finds in it: a logistic regression over
the top 2–3 candidates' selector logit and best-span logit (the span model fitted out of fold, cross-validated by
article on XQuAD-de's tuning half) moved short-answer token F1 only from 0.388 to 0.393 (contains-gold 0.799 →
0.809; 22 of 632 choices changed, 7 better and 3 worse), more features (expected F1, span margin, head word class
against the question kind, the span's overlap with the question) did not add to that, and on the held-out half it
lost (F1 0.350 → 0.344) while costing about 9 ms per extra sentence tagged. Even a perfect choice among the top 3
would reach held-out F1 0.41 only: the span scorer, not the sentence order, is what limits the short answer.
Measured again with the onnx embedder and up to 8 candidates (selector and span model out of fold by article on the
tuning half; short F1 over answerable questions, no abstention; tuning / held-out): the best sentence alone gives
0.383 / 0.346; a second-stage logistic regression over the selector logit, rank and the span scorer's raw best
logit, log-sum-exp, best probability and expected F1 (target: holds the gold answer, or the span's F1; 3, 5 or 8
candidates) 0.386-0.397 / 0.339-0.348; P(sentence) x P(best span) 0.385-0.392 / 0.343-0.351; a perfect choice among
the top 8 would give 0.505 / 0.460. A LightGBM ranker in the selector's place picked the gold sentence no more often
(held-out 0.765-0.781 against 0.772). Letting the two runner-up sentences vote on the best one's short answer (their
likely spans as 35 % of the expected F1) gave +0.006 there but +0.002 end to end (`rag eval`, held-out short F1
0.345 -> 0.347) for about 10 ms more per answer: not wired in either. Nor did the reader (``rag.answer.reader``),
when it was logistic heads over frozen e5 states, re-rank: its best start + end log-odds in each of the top 2–3
sentences, with the selector logit, rank and gaps, in a second-stage logistic regression picked a sentence holding
the answer for 0.807 of the tuning questions (against 0.805 for the selector alone, out of fold by article) and
0.771-0.774 of the held-out ones (0.772), at 15 ms per sentence read: its heads find where an answer stands in a
sentence, not which sentence answers. A relevance head
trained for that (a logistic regression on the mean token state of question and sentence read together, out of fold)
in the same second stage did hardly better: 0.807-0.810 on the tuning questions, 0.778 held out, also when only the
quarter of questions with a selector logit gap under 1 are read again. The fine-tuned reader re-ranks a little: its
log-sum-exp start and end logits (or best span) in each of the top 2–3 sentences, in the same second stage, picked a
sentence holding the answer for 0.815-0.823 of the tuning questions (readers fine-tuned out of fold) and 0.772-0.781
of the held-out ones, for 15 ms per extra sentence read. Built as a gated second look and measured with the committed
selector (the runner-up read only when the two best logits lie under 1 apart, a gate chosen so that at most a third
of the tuning questions are read; a logistic regression over the logit gap and the reader's log-sum-exp gap, fitted
on the tuning questions' pairs read by readers fine-tuned without their article): the first sentence held the answer
for 0.776 → 0.778 of XQuAD-de's held-out questions and 0.561 → 0.530 of the German set's held-out half, and the
answer itself could not gain, because a runner-up that close is already quoted beside the best (its probability is
at least ``answer_extra_ratio`` of the best one's). Not wired. A fine-tuned relevance cross-encoder (e5's top six
layers with rank-16 updates and a head on the ``<s>`` state, trained listwise on the selector's top 4 candidates of the
632 tuning questions, about 22 minutes of PyTorch) picked a sentence holding the answer for 0.785 of the held-out
questions alone and 0.783-0.785 with the selector logit (against 0.776), while its 2-fold out-of-fold models on the
tuning half did not beat the selector: with this little training data, not yet worth a second graph.

A sentence is also a candidate together with the one before it, for the answers whose subject or figure stands in
the previous sentence ("Gene Munster …" before "…, ist der Analyst überzeugt"). The best quote keeps its context,
and a nearly as likely neighbour widens it (``_widened``); a further source's context is quoted only when its own
sentence does not state the fact (``_alone``).

Sources: every further sentence that states the same fact (the short answer, or the same figures) is cited too; when
sentences of other articles give other figures or dates for the question, each is named with its article's date
(a timeline), so a reader sees that the sources disagree. A figure that ends a range does not state it ("bei 64 bis
72 Milliarden", a July forecast, against "über 72 Milliarden" spent): such a source disagrees, and the answer no
longer calls the sources "übereinstimmend". No sentence is quoted twice.

``GenerativeAnswerer`` hands the selected sentences to a language model (``rag.answer.generation``) and keeps this
extractive answer as the fallback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import cached_property
from itertools import groupby
from typing import Callable, Collection, Iterator, Sequence

from rag.answer.facts import figure_years, sentence_time
from rag.answer.generation import Generator, Passage, make_generator, refusal_text
from rag.answer.llm_spans import short_reader
from rag.answer.reader import Reader, make_reader
from rag.answer.features import Candidate, QuestionView, holds_term, joined_time, question_names
from rag.answer.owners import Owned, another_ones, asked_names, elsewhere, mentions, names_any, question_owned
from rag.answer.selection import Scored, Selector, SelectorModel
from rag.answer.spans import default_span_model, question_kind, short_answer
from rag.errors import RagError
from rag.lang.de import (CHANGE_QUESTION, FIGURE, OVERVIEW_QUESTION, counted_noun, format_date, names_money,
                         names_share_or_money, range_partners, tokenize)
from rag.lang.pos import asks_comparison, proper_names
from rag.retrieve.retrieval import Retriever
from rag.schema import Answer, Article, Citation, Hit, Retrieved
from rag.settings import Settings

# A multi-part question's missing part is looked for among this many best candidates.
PART_RANKS = 15
# A sentence stating the best one's fact is cited when it is among this many best candidates: the selector's
# probabilities compete (two sentences with the same figure share the mass), so a ratio to the best would drop it.
AGREEING_RANKS = 6
_SPACE = re.compile(r"\s+")
# The hand-written rules that compose an answer from the selector's ranking, each of which can be switched off
# (``settings.answer_rules_off``) so that `rag eval --ablate` measures what it adds on XQuAD-de and the German sets.
RULES = {
    "context": "a further source's predecessor is quoted only when its own sentence does not state the fact",
    "widen": "a nearly as likely candidate that overlaps the best one widens its quote",
    "time": "sentences about another year or quarter than the asked one are not quoted beside the best",
    "agree": "every further source stating the best sentence's fact is cited",
    "timeline": "a change over time, or another article's differing figure, is quoted per date",
    "parts": "each asked year or name of a comparison or timeline gets a sentence that holds it",
    "runner_up": "a runner-up nearly as likely as the best sentence is quoted beside it",
    "overview": "a question about what the articles say gets each article's best sentence",
    "other_time": "a question about a year or quarter is declined when the best sentence speaks about another and no "
                  "likely one about the asked",
    "other_name": "a question is declined when a name it asks about is in none of the likely sentences' articles",
    "other_owner": "sentences giving the asked noun of another name ('Meta-Chef' for 'Chef von OpenAI') are not "
                   "quoted, and the question is declined when all likely ones that name it do",
    "other_subject": "an amount question's short answer whose clause names only another actor is replaced by a "
                     "likely sentence naming the asked one, else the question is declined",
    "money_count": "a 'wie viele' question whose short answer is an amount of money is declined",
    "no_one": "a 'wer' question whose short answer has no capitalised word (no name) is declined",
    "no_amount": "a 'wann', 'wer' or 'wo' question whose short answer is a percentage or money is declined",
}
# What a question asks (``rag.answer.spans.question_kind``) that a percentage or an amount of money never answers.
AMOUNTLESS = ("when", "who", "where")


@dataclass(frozen=True)
class Choice:
    """A candidate quote with its article and its selector probability."""

    candidate: Candidate
    article: Article
    probability: float

    @property
    def span(self) -> tuple[int, int]:
        return self.candidate.start, self.candidate.end

    @property
    def quote(self) -> str:
        return self.article.text[self.candidate.start:self.candidate.end]

    @cached_property  # read for every pair of likely candidates the answer is composed of
    def figures(self) -> frozenset[str]:
        return frozenset(FIGURE.findall(self.quote))


@dataclass
class Selection:
    """The extractive decision for one question: ranked candidates, chosen ones (best first) or an abstention."""

    question: str
    kind: str
    ranked: list[Choice]
    chosen: list[Choice]
    abstained: bool
    confidence: float = 0.0
    answerable: float = 0.0
    short: str | None = None
    disagree: bool = False
    reasons: list[str] = field(default_factory=list)
    unmentioned: tuple[str, ...] = ()  # the question's names no indexed article mentions (an abstention's cause)


def asked_parts(view: QuestionView) -> list[str]:
    """What a comparison or timeline asks about, each to be held by a quote: its quarters (else its years), then
    its names and nouns, in the question's order.

    Why that order: the parts are completed one after the other, and a set's order of strings changes from one
    process to the next (hash randomisation), and with it, before, the sentences some comparisons quoted."""
    times = sorted(view.periods) or sorted(view.years)
    return [*times, *(t for t in dict.fromkeys(tokenize(view.text)) if t in view.names and not t[:1].isdigit())]


def _same_text(a: str, b: str) -> bool:
    return _SPACE.sub(" ", a).strip().casefold() == _SPACE.sub(" ", b).strip().casefold()


def says(text: str, phrase: str) -> bool:
    """Whether ``text`` holds ``phrase`` as whole words (case and white space aside): the short answer "20" is not in
    "2025 kamen nur 60,1 Prozent", nor "Li" in "Lizenz"."""
    pattern = r"(?<!\w)" + re.escape(_SPACE.sub(" ", phrase.strip()).casefold()) + r"(?!\w|[.,]\d)"
    return bool(phrase.strip()) and re.search(pattern, _SPACE.sub(" ", text).casefold()) is not None


def _states(choice: Choice, short: str | None, best: Choice, asked: frozenset[str]) -> bool:
    """Whether a sentence states the fact the best one gives: it holds the short answer (its words, or its figures:
    "zwischen 115 und 135 Milliarden Dollar" states "115 bis 135 Milliarden US-Dollar"), or all of the best
    sentence's figures beyond those in the question, and none of them only as the end of a range the best one does
    not give ("bei 64 bis 72 Milliarden" does not state "über 72 Milliarden")."""
    partners = range_partners(choice.quote)
    said = set(FIGURE.findall(short)) if short else set()
    if short and (says(choice.quote, short) or (said and said <= choice.figures)):
        return not any(partners.get(f, set()) - said for f in said)
    wanted = best.figures - asked
    return bool(wanted) and wanted <= choice.figures and not any(partners.get(f, set()) - best.figures for f in wanted)


def _figures_of(choice: Choice, years: frozenset[int], asked: frozenset[str]) -> bool:
    """Whether a sentence states a figure (beyond the question's) for one of the asked ``years``, or one with no
    known year ("Für dieses Jahr … 37 bis 40 Milliarden" in an October 2024 article gives 2024's figures even when it
    names 2025 later; "4,9 Milliarden nach 3,74 Milliarden vor einem Jahr" gives a figure of no stated year beside
    the year before's)."""
    stated = {figure: when for figure, when in figure_years(choice.quote, choice.article.date).items()
              if figure not in asked}
    return not stated or any(not when or when & years for when in stated.values())


def _about(choice: Choice, view: QuestionView) -> bool:
    """Whether a quote speaks about the asked quarter (or, without one, year), or gives the figure it compares with
    for it ("auf gut sechs Milliarden Dollar von knapp fünf Milliarden Dollar ein Jahr zuvor" for the quarter a
    year before the article's)."""
    if choice.candidate.time_fit > 0:
        return True
    years, periods = sentence_time(choice.quote, choice.article.date, baseline=True)
    return bool(view.periods & periods) if view.periods else bool({int(y) for y in view.years} & years)


def _short_mismatch(question: str, kind: str, short: str, off: Collection[str]) -> str | None:
    """Why the short answer the likely sentence gives cannot answer what the question asks (its first question
    word decides: "Was macht Doctor Who, …?" asks no person), or None. Each check is a rule of ``RULES`` and
    changed no answer on XQuAD-de's held-out half:

    - ``no_one``: "Wer leitet Metas Superintelligence Lab?" is not answered by "ein halb"; a person or organisation
      is named with a capital letter, and no gold answer of XQuAD-de's 131 "wer" questions lacks one;
    - ``no_amount``: "Wann hat Meta die Quest-Headsets erstmals auf den Markt gebracht?" is not answered by "von über
      90%", nor "Wer hat Deepseek gegründet?" by "… nur wenige Millionen Dollar": a percentage or an amount of money
      says how much; no gold answer of XQuAD-de's 111 "wann", 131 "wer" and 41 "wo" questions is one;
    - ``money_count``: "Wie viele Mitarbeiter hat Scale AI?" is not answered by "14,3 Milliarden Dollar"; the
      question counts people or things (a percentage may answer it: "7 bis 10 Prozent" of the asked doctors), and
      no gold answer of XQuAD-de's "wie viele" questions is money."""
    asking = question_kind(question)
    if "no_one" not in off and kind == "person" and asking == "who" and not any(ch.isupper() for ch in short):
        return "the likely sentence names no one the question could ask for"
    if "no_amount" not in off and asking in AMOUNTLESS and names_share_or_money(short):
        return f"the likely sentence gives an amount, the question asks {asking}"
    if "money_count" not in off and names_money(short) and counted_noun(question):
        return "the likely sentence gives an amount of money, the question counts"
    return None


def _overlaps(choice: Choice, chosen: Sequence[Choice]) -> bool:
    """Whether ``choice`` is (or overlaps) a sentence already chosen: no sentence is quoted twice."""
    return any(c.candidate.doc_id == choice.candidate.doc_id and c.span[0] < choice.span[1]
               and choice.span[0] < c.span[1] for c in chosen)


def _widened(ranked: list[Choice], floor: float) -> Choice:
    """The best candidate, or its span joined with a nearly as likely candidate of the same article that overlaps it
    (a sentence pair holding it, or two pairs sharing a sentence).

    Why: overlapping candidates cannot both be quoted, and when the selector finds both nearly equally likely it is
    unsure whether the neighbour holds the answer ("Abū l-Qāsim … war Vorreiter …" before "Sein Liber servitoris …");
    the joined quote holds it either way. Measured on XQuAD-de (answer contains gold): tuning half 0.832 -> 0.842,
    held-out half 0.794 -> 0.806."""
    best = ranked[0]
    for choice in ranked[1:AGREEING_RANKS]:
        if (choice.probability >= floor and choice.candidate.doc_id == best.candidate.doc_id
                and choice.span[0] < best.span[1] and best.span[0] < choice.span[1]):
            start, end = min(choice.span[0], best.span[0]), max(choice.span[1], best.span[1])
            return replace(best, candidate=replace(best.candidate, start=start, end=end,
                                                  position=max(best.candidate.position, choice.candidate.position)))
    return best


def _one_each(ranked: list[Choice], chosen: list[Choice], limit: int, key: Callable[[Choice], object],
              fits: Callable[[int, Choice], bool]) -> list[Choice]:
    """``chosen`` with, for every ``key`` (an article's date, an article) no chosen quote has, its best candidate
    that ``fits`` (its rank, it) and overlaps no chosen quote, up to ``limit`` quotes."""
    chosen = list(chosen)
    for rank, choice in enumerate(ranked[1:], start=1):
        if len(chosen) >= limit:
            break
        if key(choice) not in {key(c) for c in chosen} and not _overlaps(choice, chosen) and fits(rank, choice):
            chosen.append(choice)
    return chosen


def _per_date(ranked: list[Choice], chosen: list[Choice], asked: frozenset[str], years: frozenset[int],
              limit: int) -> list[Choice]:
    """A change over time is told by each date's statement: from every article date not yet quoted, its best
    candidate that gives a figure beyond the question's (for the one asked year, if one is asked) is added. Among
    the ``PART_RANKS`` best candidates one that names no time will do; further down only one that speaks about the
    asked time ("Zwischen 60 und 65 Milliarden Dollar sollen in diesem Jahr … fließen" in January 2025 for "How did
    Meta's capex figures for 2025 change over time?": it shares no word with the question, and ranks 25th).
    Measured with the selector of f364b8e: the German set 0.766 → 0.776 correct, the others unchanged (XQuAD-de's
    articles are undated: one date)."""
    def fits(rank: int, choice: Choice) -> bool:
        return (bool(choice.figures - asked) and choice.candidate.time_fit >= (0 if rank < PART_RANKS else 1)
                and (len(years) != 1 or _figures_of(choice, years, asked)))

    return _one_each(ranked, chosen, limit, lambda c: c.article.date, fits)


def _per_article(ranked: list[Choice], chosen: list[Choice], limit: int) -> list[Choice]:
    """A question about what the articles say ("Was berichten die Artikel über Llama 4?") is answered by each
    article's statement: from every article not yet quoted, its best candidate among the ``PART_RANKS`` best that
    speaks about no other time than the asked one is added."""
    return _one_each(ranked, chosen, limit, lambda c: c.candidate.doc_id,
                     lambda rank, c: rank < PART_RANKS and c.candidate.time_fit >= 0)


def _short_answer(question: str, quote: str, reader: Reader,
                  llm: Callable[[str, str], str | None] | None = None, terms: str = "") -> str | None:
    """The short answer of ``llm`` (the language model, ``settings.short_answers = "llm"``) when it gives a span
    of the quote, else of ``rag.answer.spans`` with ``reader`` (None when it declines)."""
    if llm is not None and (text := llm(question, quote)):
        return text
    try:
        span = short_answer(question, quote, reader, terms=terms)
    except FileNotFoundError:  # no span model trained yet: the answer is the quote alone
        return None
    return span.text if span is not None else None


class ExtractiveAnswerer:
    """Question → cited answer from the retriever's passages, with no model beyond the retriever's and the learned
    selector's coefficients."""

    def __init__(self, retriever: Retriever, settings: Settings, model: SelectorModel | None = None) -> None:
        self.retriever = retriever
        self.settings = settings
        self.selector = Selector(retriever, model)
        self.short_reader = short_reader(settings)
        self.reader = make_reader(settings, retriever.embedder)
        unknown = sorted(set(settings.answer_rules_off) - set(RULES))
        if unknown:
            raise RagError(f"Unknown answer rule {', '.join(unknown)} in answer_rules_off; "
                           f"known: {', '.join(RULES)}.")
        self.off = frozenset(settings.answer_rules_off)

    @property
    def index(self):
        return self.retriever.index

    def warm_up(self) -> None:
        self.retriever.warm_up()
        from rag.answer.selection import default_model

        if self.selector.model is None:
            default_model()
        self.retriever.thesaurus()  # parsed in about two seconds: not on the first question
        from rag.lang.pos import warm_up as warm_up_tagger

        try:  # the short answer's span model, reader and tagger, so that the first answer does not load them
            default_span_model()
            self.reader.warm_up()
        except FileNotFoundError:  # no span model trained yet: answers carry the quote alone
            return
        warm_up_tagger()

    def select(self, question: str, hits: Sequence[Hit]) -> Selection:
        """Score the candidate sentences of ``hits`` and choose the answer's sentences, or abstain."""
        if not any(ch.isalnum() for ch in question):  # "🤖🤖", "?!": no word to look for, though vectors find one
            return Selection(question, "other", [], [], True, reasons=["the question has no words"])
        question = self.selector.dated(question)  # "dieses Jahr" → the year, as retrieval read it
        passages = self.settings.answer_passages
        if CHANGE_QUESTION.search(question):
            passages *= 2  # a change over time is told across more articles than a single fact
        scored: Scored = self.selector.score(question, hits, passages)
        ranked = self._choices(scored)
        kind = scored.view.kind
        # A question all of whose names no indexed article mentions ("Wie viele Autos hat Mercedes ausgeliefert?"
        # over articles on BMW and Volkswagen) is not answered by a sentence about another company, however well it
        # matches the rest: the answerability model weighs unknown names, but too lightly where all else matches.
        # On XQuAD-de's held-out half no answerable question is such; "VW" for "Volkswagen" is (it was declined before).
        unmentioned = scored.view.unmentioned
        if unmentioned:
            return Selection(question, kind, ranked, [], True, scored.confidence, scored.answerable,
                             reasons=[f"no article mentions {', '.join(unmentioned)}"], unmentioned=unmentioned)
        if scored.abstain or not ranked or scored.confidence < self.settings.abstain_below:
            reason = ("no candidate sentence" if not ranked else
                      f"the articles hold no answer (answerable {scored.answerable:.2f}, confidence {scored.confidence:.2f})")
            return Selection(question, kind, ranked, [], True, scored.confidence, scored.answerable, reasons=[reason])
        owned = (question_owned(question, self.retriever.dictionary())
                 if kind == "person" and "other_owner" not in self.off else ())
        if owned:
            likely = ranked[:AGREEING_RANKS]
            theirs = [c for c in likely if any(elsewhere(c.quote, o) for o in owned)]
            if theirs and not any(self._owns(c, o) for c in likely for o in owned):
                # likely sentences give someone else's role ("Wer ist der Chef von OpenAI?" over "Meta-Chef Mark
                # Zuckerberg …"), and none names it in an article about the asked name: the asked one's is not there
                return Selection(question, kind, ranked, [], True, scored.confidence, scored.answerable,
                                 reasons=["the likely sentences name what the question asks about for another name"])
            ranked = [c for c in ranked if c not in theirs]  # another's role or figure is never quoted as the answer
        if ("other_time" not in self.off and (scored.view.years or scored.view.periods)
                and ranked[0].candidate.time_fit < 0
                and not any(_about(c, scored.view) for c in ranked[:AGREEING_RANKS])):
            # the best sentence speaks about another year or quarter than the asked one, and no likely one about the
            # asked ("Wie hoch sollen die Investitionen 2027 sein?" over figures for 2025 and 2026): the asked time's
            # fact is not there. A sentence that gives the asked time's figure as the one it compares with speaks
            # about it too ("Und ein Jahr davor?" after the fourth quarter of 2025: "… von knapp fünf Milliarden
            # Dollar ein Jahr zuvor"). Measured against declining only when all of them speak about other times:
            # XQuAD-de near misses declined 0.300 -> 0.336, false abstention unchanged; the German sets unchanged
            return Selection(question, kind, ranked, [], True, scored.confidence, scored.answerable,
                             reasons=["the likely sentences speak about other times than the asked one"])
        comparison = asks_comparison(question)
        if ("other_name" not in self.off and not comparison
                and self._name_unmentioned(question, ranked[:AGREEING_RANKS])):
            return Selection(question, kind, ranked, [], True, scored.confidence, scored.answerable,
                             reasons=["the likely sentences' articles do not mention a name the question asks about"])
        floor = self.settings.answer_extra_ratio * ranked[0].probability
        terms = " ".join(sorted(scored.view.tokens - frozenset(tokenize(question)))) if scored.view.glossed else ""
        overview = "overview" not in self.off and bool(OVERVIEW_QUESTION.search(question))
        # what the articles say about a subject is told by their sentences: no span of one of them answers it
        short = None if overview else _short_answer(question, ranked[0].quote, self.reader, self.short_reader, terms)
        mismatch = _short_mismatch(question, kind, short, self.off) if short else None
        if mismatch:
            return Selection(question, kind, ranked, [], True, scored.confidence, scored.answerable, reasons=[mismatch])
        names = asked_names(question) if short and kind == "amount" and "other_subject" not in self.off else []
        if names and not comparison and another_ones(ranked[0].quote, short, names):
            # the best sentence gives another's figure ("Meta hat im Gesamtjahr 2024 … 39 Milliarden Dollar …
            # gesteckt" for Microsoft's): a likely sentence that names the asked one and gives a figure of no other
            # time answers instead ("Microsoft steckte rund 22,6 Milliarden Dollar …"), else none does. Measured: the
            # held-out 40's unanswerables declined 0.5 → 0.6, German set short answers correct +1, XQuAD-de unchanged
            # (declining at once, without the replacement: German set correct -1; every name of the clause counted
            # as its actor, "… in den Küstengebieten von Malindi" for Kenya's: one XQuAD-de answer lost)
            figures = frozenset(FIGURE.findall(question))
            named = next((c for c in ranked[1:AGREEING_RANKS] if c.figures - figures and c.candidate.time_fit >= 0
                          and names_any(c.quote, names)), None)
            short = named and _short_answer(question, named.quote, self.reader, self.short_reader, terms)
            if not short or another_ones(named.quote, short, names):
                return Selection(question, kind, ranked, [], True, scored.confidence, scored.answerable,
                                 reasons=["the likely sentence gives the figure of another name than the asked one"])
            ranked = [named, *(c for c in ranked[1:] if c is not named)]
        if kind == "amount" and ranked[0].candidate.time_fit < 0 and not CHANGE_QUESTION.search(question):
            # the best quote gives another year's or quarter's figure ("2025 kamen nur 60,1 Prozent" for 2023):
            # quoted with its date it says so; leading the answer, the figure would claim to be the asked one's
            short = None
        asked = frozenset(FIGURE.findall(question))
        asked_years = frozenset(int(y) for y in scored.view.years)

        def holds_short(own: Choice) -> bool:
            return bool(short) and says(own.quote, short)

        def other_years_only(before: Choice) -> bool:
            """The sentence gives figures only for other years than the asked ones."""
            return bool(asked_years) and not _figures_of(before, asked_years, asked)

        def further(own: Choice, before: Choice) -> bool:
            """A further source's sentence holds the short answer, or new figures while the sentence before it
            gives figures for other years than the asked ones ("Für das laufende Jahr … 115 und 135 Milliarden" in
            January 2026 before "2025 gab der Konzern … 72 Milliarden" under 2025)."""
            return holds_short(own) or bool(own.figures - asked) and other_years_only(before)

        def other_years(own: Choice, before: Choice) -> bool:
            """The sentence holds the short answer, and the one before it gives figures only for other years
            than the asked ones ("2019 verkaufte Nordlicht 300 Segelboote." before the asked 2021's 450)."""
            return holds_short(own) and bool(before.figures - asked) and other_years_only(before)

        best = ranked[0] if "widen" in self.off else _widened(ranked, floor)
        if "context" not in self.off and best.candidate.pair:
            best = self._alone(best, other_years) or best
        chosen = [best]
        limit = self.settings.answer_max_sentences
        timeline = "timeline" not in self.off and (bool(CHANGE_QUESTION.search(question)) or len(scored.view.years) > 1)
        disagree = False
        for rank, choice in enumerate(ranked[1:], start=1):
            if _overlaps(choice, chosen):
                continue  # the same sentence (or an overlapping pair) is never quoted twice
            if "time" not in self.off and (choice.candidate.time_fit < 0 or (
                    asked_years and not timeline and not _figures_of(choice, asked_years, asked))):
                continue  # it speaks about another year or quarter than the one asked, or gives another year's figures
            close = choice.probability >= floor
            likely = choice.probability >= self.settings.answer_timeline_ratio * best.probability
            states = _states(choice, short, best, asked)
            if "agree" not in self.off and states and rank < AGREEING_RANKS:
                chosen.append(choice)  # another source stating the same fact: cited, whatever the limit
            elif (timeline and likely and len(chosen) < limit and choice.figures - asked
                  and choice.article.date not in {c.article.date for c in chosen}):
                disagree = True  # a change over time: each date's statement, named with its date
                chosen.append(choice)
            elif ("timeline" not in self.off and close and len(chosen) < limit and kind in ("amount", "date")
                  and choice.candidate.doc_id not in {c.candidate.doc_id for c in chosen}
                  and choice.article.date != best.article.date
                  and choice.figures - asked and not states):
                disagree = True  # another article gives another figure or date: named with its date
                chosen.append(choice)
            elif "runner_up" not in self.off and close and len(chosen) < 2:
                chosen.append(choice)  # a runner-up nearly as likely: the selector is unsure, the reader decides
        if "parts" not in self.off and (timeline or comparison):
            chosen = self._complete(scored, ranked, chosen, limit, hits)
        if timeline:
            chosen = _per_date(ranked, chosen, asked, asked_years, 2 * limit)
        if overview:
            chosen = _per_article(ranked, chosen, limit)
        if "context" not in self.off:
            chosen = chosen[:1] + [self._alone(c, further) or c for c in chosen[1:]]
        return Selection(question, kind, ranked, chosen, False, scored.confidence, scored.answerable, short, disagree)

    def _name_unmentioned(self, question: str, likely: Sequence[Choice]) -> bool:
        """Whether a proper name of the question that the index knows is in none of the ``likely`` quotes'
        articles (their text and title): a near miss ("Wann wurde Kenyatta Präsident von Uganda?" over an article
        on Kenya that never names Uganda, which another article does).

        Why a rule: the answerability model reads such a name only as one weak feature among many. Measured on
        XQuAD-de's held-out half (the best 6 candidates; comparisons exempt, as each side comes from its own
        sentence): near misses declined 0.336 → 0.407, false abstention 0.034 → 0.043, contains gold 0.880 →
        0.873 (a name the gold paragraph spells otherwise: "EmK", "Lor Loudoun"); the German sets unchanged."""
        known = self.retriever.stem_weights
        names = [stems for n in question_names(question)
                 if (stems := tokenize(n)) and len(known(stems)) == len(set(stems))]
        if not names:
            return False
        doc_ids = dict.fromkeys(c.candidate.doc_id for c in likely)
        articles = [self.selector.sentences.words(doc_id) for doc_id in doc_ids]
        return any(not any(holds_term(t, words) for words in articles for t in stems) for stems in names)

    def _owns(self, choice: Choice, owned: Owned) -> bool:
        """The quote names the asked noun not as another name's, in an article that names the asked owner
        ("Finanzchefin Susan Li betonte …" in an article about Meta, for "die Finanzchefin von Meta")."""
        words = self.selector.sentences.words(choice.candidate.doc_id)
        return (bool(mentions(choice.quote, owned)) and not elsewhere(choice.quote, owned)
                and any(holds_term(t, words) for t in owned.owner))

    def _alone(self, choice: Choice, holds: Callable[[Choice, Choice], bool]) -> Choice | None:
        """A further source's own sentence, when it does not lean on the one before and ``holds`` what it is quoted
        for (``holds(own sentence, the sentence before)``): its context is then not quoted.

        Why only further sources: a further source is quoted for a fact it states, and its predecessor would bring
        figures of other years ("… 115 und 135 Milliarden Dollar in Aussicht. 2025 gab der Konzern … 72 Milliarden
        Dollar aus" under 2025). The best quote is not trimmed so: its short answer is wrong often enough that the
        context it would drop holds the answer. Measured on XQuAD-de (answers holding the gold answer, tuning /
        held-out half, and characters quoted per answer), trimming the best quote's context when its sentence holds
        the short answer (and not widening it then): 0.889 / 0.849 at 308 / 350; trimming only a pair's context,
        widening a single sentence: 0.894 / 0.867 at 373 / 417; never trimming the best quote: 0.899 / 0.876 at
        400 / 450 (the German set: 0.692 → 0.710, its held-out 40: 0.733 → 0.800). Keeping a pair's context
        only when the sentence alone is less likely than the pair did not do better (0.896 / 0.858). The one
        exception (``select``'s ``other_years``): a question about a year, whose best quote's sentence holds the
        short answer after a sentence that gives only other years' figures ("2019 verkaufte Nordlicht 300
        Segelboote." before 2021's 450): that context is another year's fact, not the answer's."""
        info = self.selector.sentences.of(choice.candidate.doc_id)[choice.candidate.position]
        if info.anaphoric:
            return None
        own = replace(choice, candidate=replace(choice.candidate, start=info.start, pair=False))
        before = replace(choice, candidate=replace(choice.candidate, end=info.start, pair=False))
        return own if holds(own, before) else None

    def _complete(self, scored: Scored, ranked: list[Choice], chosen: list[Choice], limit: int,
                  hits: Sequence[Hit]) -> list[Choice]:
        """A timeline or comparison asks for several facts ("2024 und 2026", "Microsoft im Vergleich zu Meta"): for
        each asked year or name that no chosen sentence holds, the best candidate that holds it is added."""
        parts = asked_parts(scored.view)
        named = {t for w in proper_names(scored.view.text) for t in tokenize(w)} & set(parts)
        chosen = list(chosen)
        for part in parts:
            if len(chosen) >= limit + len(parts) - 1:
                break
            if any(self._holds(c, part) for c in chosen):
                continue
            pool = self._ranked_for(scored.view.text, part, named, hits) if part in named else ranked[1:PART_RANKS]
            for choice in pool:
                if self._holds(choice, part) and not _overlaps(choice, chosen):
                    chosen.append(choice)
                    break
        return chosen

    def _ranked_for(self, question: str, part: str, named: set[str], hits: Sequence[Hit]) -> list[Choice]:
        """The candidates ranked for the question asked about the proper name ``part`` alone: the question without
        the other names it compares ("Was war teurer: der Kauf von WhatsApp oder Metas Deal …?" for WhatsApp).

        Why: ranked for the whole question, the first candidate that names the part is often one that matches the
        other names' words too and merely mentions the part ("Anwendungen wie Facebook, Instagram und WhatsApp
        fuhren … 19,3 Milliarden Dollar ein")."""
        others = named - {part}
        words = [w for w in _SPACE.split(question) if not others & set(tokenize(w))]
        return self._choices(self.selector.score(" ".join(words), hits, self.settings.answer_passages))[:PART_RANKS]

    def _choices(self, scored: Scored) -> list[Choice]:
        """The scored candidates, best first, with their articles."""
        articles = self.index.articles
        return [Choice(c, articles[c.doc_id], float(p)) for c, p in zip(scored.candidates, scored.probabilities)]

    def _holds(self, choice: Choice, part: str) -> bool:
        """Whether the quote speaks about the asked quarter ("2024-q4", also as "im abgelaufenen Quartal") or year
        (also as "dieses Jahr"), in its sentence or the one before it quoted with it, or holds the asked name."""
        if part[:1].isdigit():
            infos = self.selector.sentences.of(choice.candidate.doc_id)
            info = infos[choice.candidate.position]
            if choice.candidate.pair:
                info = joined_time(infos[choice.candidate.position - 1], info)
            if not part.isdigit():
                return part in info.time_periods
            return (int(part) in info.time_years or any(p.startswith(part) for p in info.time_periods)
                    or part in choice.quote)
        return holds_term(part, set(tokenize(choice.quote)))

    def run(self, question: str, id: str | None = None, hits: Sequence[Hit] | None = None) -> Answer:
        """The cited answer to ``question``; ``hits`` reuses a retrieval already done."""
        hits = list(hits) if hits is not None else self.retriever.run(question, k=self.settings.top_k)
        return compose(id, question, self.select(question, hits), hits, self.settings.abstain_sources)


def _cite(n: int, choice: Choice) -> Citation:
    article = choice.article
    start, end = choice.span
    return Citation(n, article.doc_id, article.title, article.date, choice.quote, start, end,
                    round(choice.probability, 4), article.date_inferred)


def _with_markers(text: str, numbers: Sequence[int]) -> str:
    """The quote on one line with its ``[n]`` markers before its final full stop, as in running German text."""
    text = " ".join(text.split())
    marks = "".join(f"[{n}]" for n in numbers)
    if text.endswith("."):
        return f"{text[:-1]} {marks}."
    return f"{text} {marks}"


def abstention(id: str | None, question: str, nearest: Sequence[Choice], hits: Sequence[Hit],
               reason: str | None = None, confidence: float | None = None, unmentioned: Sequence[str] = ()) -> Answer:
    """The German "no answer" text, with the nearest sentences listed and cited as such."""
    citations = [_cite(n, c) for n, c in enumerate(nearest, start=1)]
    return Answer(id, question, refusal_text(citations, unmentioned), True, citations,
                  [Retrieved.from_hit(h) for h in hits], abstain_reason=reason,
                  confidence=None if confidence is None else round(confidence, 4))


def compose(id: str | None, question: str, selection: Selection, hits: Sequence[Hit], nearest: int = 2) -> Answer:
    """The answer text: the short answer first, then the chosen sentences verbatim with their ``[n]`` (a sentence
    that several articles state identically is quoted once with all their markers), dated; as a timeline when the
    sources have different dates."""
    if selection.abstained:
        distinct: list[Choice] = []
        for choice in selection.ranked:
            if choice.candidate.doc_id not in {c.candidate.doc_id for c in distinct}:
                distinct.append(choice)
        return abstention(id, question, distinct[:nearest], hits, "; ".join(selection.reasons) or None,
                          selection.confidence, selection.unmentioned)
    chosen = selection.chosen
    dates = {c.article.date for c in chosen}
    if len(dates) > 1:  # newest article first, each article's quotes in the order it gives them
        chosen = sorted(chosen, key=lambda c: (c.article.date or "", c.candidate.doc_id, -c.candidate.start),
                        reverse=True)
    citations = [_cite(n, c) for n, c in enumerate(chosen, start=1)]
    groups: list[tuple[Choice, list[int]]] = []  # identical sentences of several articles: one quote, all markers
    for n, choice in enumerate(chosen, start=1):
        same = next((g for g in groups if _same_text(g[0].quote, choice.quote)
                     and g[0].article.date == choice.article.date), None)
        if same is not None:
            same[1].append(n)
        else:
            groups.append((choice, [n]))
    lead = f"{selection.short.rstrip('.')}. " if selection.short and not selection.disagree else ""
    if len(dates) == 1:
        (only,) = dates
        said = f"Laut dem Artikel vom {format_date(only, chosen[0].article.date_inferred)}: " if only else ""
        text = lead + said + " ".join(_with_markers(c.quote, ns) for c, ns in groups)
    else:
        asked = frozenset(FIGURE.findall(question))
        best = selection.chosen[0]  # agreement is with the best sentence, of the other articles' quotes
        agree = all(_states(c, selection.short, best, asked) for c in selection.chosen[1:]
                    if c.candidate.doc_id != best.candidate.doc_id)
        head = ("Die Quellen nennen je nach Datum unterschiedliche Angaben (neueste zuerst):" if selection.disagree
                else lead + ("Mehrere Artikel nennen das übereinstimmend (neueste zuerst):" if agree
                             else "Die Artikel berichten dazu zu verschiedenen Zeitpunkten (neueste zuerst):"))
        lines = []  # an article's quotes stand on its one dated line
        for _, run in groupby(groups, key=lambda g: g[0].candidate.doc_id):
            run = list(run)
            article = run[0][0].article
            quotes = " ".join(_with_markers(c.quote, ns) for c, ns in run)
            lines.append(f"- {format_date(article.date, article.date_inferred)}: {quotes}")
        text = "\n".join([head, *lines])
    return Answer(id, question, text, False, citations, [Retrieved.from_hit(h) for h in hits],
                  short_answer=selection.short, confidence=round(selection.confidence, 4))


def generation_passages(selection: Selection, count: int) -> list[Passage]:
    """What a language model is given: the chosen sentences first, then the next best ones, without overlaps,
    numbered from 1."""
    picked: list[Choice] = []
    for choice in [*selection.chosen, *selection.ranked]:
        start, end = choice.span
        if len(picked) >= count:
            break
        if all(c.candidate.doc_id != choice.candidate.doc_id or c.span[1] <= start or end <= c.span[0] for c in picked):
            picked.append(choice)
    return [Passage(n, c.article.doc_id, c.article.title, c.article.date, c.article.date_inferred, *c.span,
                    c.quote, c.probability) for n, c in enumerate(picked, start=1)]


def agreement(selection: Selection) -> dict:
    """What the generated answer must keep of the extractive evidence (see ``grounding.check_answer``): for a figure,
    every figure of the short answer ("115 bis 135 Milliarden": both ends; of the best quote when the short answer
    holds none) and one of each further quote (each date's figures when the sources disagree); for a date, a figure
    of the best quote; for a person or place, the short answer's words. Anything else is an open question that
    nothing could check: empty.

    Why the short answer's figures, not the best quote's: the best quote may be two sentences (a sentence with its
    context, or joined with a neighbour), and an answer need not repeat the figures of the sentence that only gives
    context ("14,3 Milliarden Dollar für Scale-AI …" before "Bis zu 100 Millionen Dollar schwere Packages …")."""
    best = selection.chosen[0]
    if selection.kind == "amount":
        if selection.disagree:
            return {"all_figures": [c.quote for c in selection.chosen]}
        stated = selection.short if selection.short and FIGURE.search(selection.short) else best.quote
        return {"share_figures": [c.quote for c in selection.chosen[1:]], "all_figures": [stated]}
    if selection.kind == "date":
        return {"share_figures": [best.quote]}
    if selection.short and selection.kind in ("person", "place"):
        words = [w for w in re.findall(r"[\w-]+", selection.short) if len(w) > 2 and w.lower() not in selection.question.lower()]
        return {"mention": [words]} if words else {}
    return {}


def generate(generator: Generator, selection: Selection, question: str, hits: Sequence[Hit],
             fallback: Callable[[], Answer], id: str | None = None) -> Iterator[str | Answer]:
    """A language model's answer from the extractive selection's sentences, checked against them. A question the
    selector declines is declined without asking the model (``fallback()``), and so is an open question whose
    answer nothing could check (no short answer, no figure): it gets the verbatim sentences. A refusal by the model
    does not hide sentences the selector found. Used by the generative answerers and the chat alike."""
    if selection.abstained:
        yield fallback()
        return
    agree = agreement(selection)
    if not agree and selection.kind in ("other", "reason"):
        answer = fallback()
        answer.fallback_reason = "Offene Frage: die wörtlichen Belege antworten (das Sprachmodell schreibt nur prüfbare Antworten)."
        yield answer
        return
    for piece in generator.stream(question, hits, generation_passages(selection, generator.settings.llm_passages),
                                  fallback, id, agree):
        if isinstance(piece, Answer) and piece.abstained:
            piece = fallback()
            piece.fallback_reason = "Das Sprachmodell fand in seinen Textstellen keine Antwort; die Belege antworten."
        elif isinstance(piece, Answer):
            short = piece.short_answer or selection.short  # kept only when a cited quote holds it verbatim
            piece.short_answer = short if short and any(short in c.quote for c in piece.citations) else None
            piece.confidence = selection.confidence if piece.confidence is None else piece.confidence
        yield piece


class GenerativeAnswerer:
    """Answers written by a language model from the extractive selector's best sentences, then checked.

    Why these passages: the learned selector already found the sentences that answer; giving the model four or five
    of them (not whole chunks) keeps the prompt near 400 tokens, so the local model starts writing within seconds
    on two cores. A question the selector declines is declined without asking the model. When the generated answer
    fails a grounding check, or the model or server fails, the extractive answer is returned and
    ``fallback_reason`` says why.
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
