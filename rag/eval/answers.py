"""Answer metrics over any question set: contains-gold, short-answer EM/F1, citation, abstention, calibration.

Every answered question becomes one ``Judged`` record (the gold side and what
the answerer said); ``answer_scores`` turns a list of them into the numbers of
the report, ``worst`` into the table of failures a user reads first.

- *contains gold*: the answer text holds every gold fact (one accepted variant
  each, figures standing alone: ``rag.eval.metrics.answer_correct``), over all
  answerable questions; an abstention is not correct.
- *short answer* EM / token F1: SQuAD's measures with the German normalisation
  of the MLQA evaluation script (lower case, punctuation removed, German
  articles removed, white space tokens), best over the accepted answers, over
  all answerable questions that have span answers (XQuAD, SQuAD files, a
  user's ``answers`` column); a missing ``short_answer`` scores 0. The German
  eval set's gold is a list of facts, not spans: there the short answer is
  scored as *short correct* (it holds every fact) instead.
- *short verbatim*: answers whose ``short_answer`` is a substring of one of their cited quotes (must be 1.0).
- *gold citation*: answered answerable questions citing a gold article, over
  all answerable questions with gold articles.
- *abstention*: unanswerable questions declined; *false abstention*:
  answerable questions declined.
- *ECE* (expected calibration error) of ``confidence`` over the *answered*
  questions: what the user sees next to an answer is the probability that it is
  right, so it is compared with how often answers of that confidence are right
  (answers to unanswerable questions are never right). Ten equal-width bins;
  ECE = Σ_b (n_b / n) · |accuracy_b − mean confidence_b|.

Answer objects written before ``short_answer`` and ``confidence`` existed lack
them: those metrics are then ``None`` ("not available"), the others still count.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Mapping, Sequence

from rag.eval.metrics import answer_correct, doc_ranking, facts_of
from rag.lang.de import ARTICLES

BINS = 10
WORST = 20
# Articles removed before comparing short answers, as the MLQA evaluation script does for German (the English ones
# of rag.lang.de too, as SQuAD's script does: the span scorer is trained with the same list).
_ARTICLE_PATTERN = re.compile(r"\b(?:" + "|".join(sorted(ARTICLES)) + r")\b")
# Why an answer failed, worst first: a confident answer to an unanswerable question misleads most.
REASONS = ("answered unanswerable", "wrong sentence", "retrieval miss", "false abstention", "wrong short answer")


# --- short answers (SQuAD / MLQA) --------------------------------------------


def normalise_short(text: str) -> str:
    """Lower case, punctuation removed, German articles removed, white space collapsed (MLQA, German)."""
    text = unicodedata.normalize("NFKC", text or "").lower()
    text = "".join(ch for ch in text if ch not in string.punctuation and not unicodedata.category(ch).startswith("P"))
    text = _ARTICLE_PATTERN.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str | None, golds: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals one normalised gold answer."""
    guess = normalise_short(prediction or "")
    return float(any(guess == normalise_short(g) for g in golds))


def token_f1(prediction: str | None, golds: Sequence[str]) -> float:
    """Best token-overlap F1 over the gold answers (two empty texts agree; one empty text scores 0)."""
    guess = normalise_short(prediction or "").split()
    best = 0.0
    for gold in golds:
        truth = normalise_short(gold).split()
        if not guess or not truth:
            best = max(best, float(guess == truth))
            continue
        common = sum((Counter(guess) & Counter(truth)).values())
        if common:
            precision, recall = common / len(guess), common / len(truth)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


# --- one judged answer -------------------------------------------------------


@dataclass(frozen=True)
class Judged:
    """A question's gold side next to what the answerer returned."""

    id: str
    question: str
    answerable: bool
    gold_docs: tuple[str, ...]
    facts: tuple                # the eval set's ``answer``: facts, each a tuple of accepted variants
    spans: tuple[str, ...]      # accepted short answers for EM/F1 (empty: the gold is not a span)
    answer: str | None
    abstained: bool
    short_answer: str | None
    confidence: float | None
    cited: tuple[str, ...]      # doc ids of the citations, in order
    quotes: tuple[str, ...]     # the citations' quotes, in order
    retrieved: tuple[str, ...]  # doc ids of the retrieval list, best first, each once

    @property
    def correct(self) -> bool:
        """Answered, and the answer text holds every gold fact (never for an unanswerable question)."""
        return self.answerable and not self.abstained and answer_correct(self.answer, self.facts)

    @property
    def gold_cited(self) -> bool:
        return not self.abstained and any(d in self.gold_docs for d in self.cited)

    @property
    def gold_retrieved(self) -> bool:
        return any(d in self.gold_docs for d in self.retrieved)


def judge(question, result: Mapping, span_gold: bool = False) -> Judged:
    """``question`` (an ``EvalQuestion``) and its answer object (a dict) as one record.

    ``span_gold``: the question's single gold fact lists accepted answer *spans* (XQuAD, SQuAD files, a
    user's ``answers``), so the short answer is scored by EM/F1 against them.
    """
    facts = tuple(tuple(f) for f in facts_of(question.answer))
    confidence = result.get("confidence")
    return Judged(
        id=str(question.id), question=question.question, answerable=bool(question.answerable),
        gold_docs=tuple(question.gold_docs), facts=facts,
        spans=facts[0] if span_gold and len(facts) == 1 else (),
        answer=result.get("answer"), abstained=bool(result.get("abstained")), short_answer=result.get("short_answer"),
        confidence=None if confidence is None else float(confidence),
        cited=tuple(c.get("doc_id") for c in result.get("citations") or []),
        quotes=tuple(c.get("quote") or "" for c in result.get("citations") or []),
        retrieved=tuple(doc_ranking(r.get("doc_id") for r in result.get("retrieved") or [])))


# --- calibration -------------------------------------------------------------


def reliability(confidences: Sequence[float], outcomes: Sequence[bool], bins: int = BINS) -> list[dict]:
    """Per equal-width bin of ``[0, 1]``: questions, mean confidence (predicted), share correct (observed).

    Bin ``b`` holds ``b/bins ≤ p < (b+1)/bins``; 1.0 falls into the last bin. Empty bins are left out.
    """
    curve = []
    for b in range(bins):
        members = [(p, y) for p, y in zip(confidences, outcomes) if min(int(p * bins), bins - 1) == b]
        if members:
            curve.append({"low": b / bins, "high": (b + 1) / bins, "n": len(members),
                          "predicted": sum(p for p, _ in members) / len(members),
                          "observed": sum(y for _, y in members) / len(members)})
    return curve


def expected_calibration_error(curve: Sequence[Mapping]) -> float | None:
    """Σ_b (n_b / n) · |observed_b − predicted_b| over the bins of ``reliability``."""
    total = sum(row["n"] for row in curve)
    if not total:
        return None
    return sum(row["n"] / total * abs(row["observed"] - row["predicted"]) for row in curve)


# --- the scores --------------------------------------------------------------


def _share(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def answer_scores(judged: Sequence[Judged], bins: int = BINS) -> dict:
    """The answer metrics of the module docstring; ``None`` where a measure has no questions or no data."""
    answerable = [j for j in judged if j.answerable]
    unanswerable = [j for j in judged if not j.answerable]
    with_facts = [j for j in answerable if j.facts]
    with_spans = [j for j in answerable if j.spans]
    shorts_given = any(j.short_answer is not None for j in judged)
    answered = [j for j in judged if not j.abstained]
    calibrated = [j for j in answered if j.confidence is not None]
    curve = reliability([j.confidence for j in calibrated], [j.correct for j in calibrated], bins)
    return {
        "questions": len(judged), "answerable": len(answerable), "unanswerable": len(unanswerable),
        "contains_gold": _share([j.correct for j in with_facts]),
        "short_exact": _mean([exact_match(j.short_answer, j.spans) for j in with_spans]) if shorts_given else None,
        "short_f1": _mean([token_f1(j.short_answer, j.spans) for j in with_spans]) if shorts_given else None,
        "short_correct": (_share([not j.abstained and answer_correct(j.short_answer, j.facts) for j in with_facts])
                          if shorts_given else None),
        "short_given": sum(j.short_answer is not None for j in answerable),
        "short_verbatim": _share([any(j.short_answer in q for q in j.quotes) for j in judged if j.short_answer]),
        "gold_citation": _share([j.gold_cited for j in answerable if j.gold_docs]),
        "quoted_chars": _mean([sum(len(q) for q in j.quotes) for j in answered]),
        "abstention": _share([j.abstained for j in unanswerable]),
        "false_abstention": _share([j.abstained for j in answerable]),
        "ece": expected_calibration_error(curve),
        "calibrated": len(calibrated),
        "reliability": curve,
        "failures_by_reason": {r: n for r in REASONS if (n := sum(failure_reason(j) == r for j in judged))},
    }


# --- failures ----------------------------------------------------------------


def failure_reason(j: Judged) -> str | None:
    """Why the answer failed (one of ``REASONS``), or None when it is right.

    A wrong answer whose gold article is not among the retrieved ones is a *retrieval miss*; with the gold
    article retrieved it picked the *wrong sentence*. A right answer whose short answer misses the gold span
    (F1 < 0.5) has a *wrong short answer*.
    """
    if not j.answerable:
        return None if j.abstained else REASONS[0]
    if j.abstained:
        return REASONS[3]
    if j.facts and not j.correct:
        return REASONS[1] if j.gold_retrieved or not j.gold_docs else REASONS[2]
    if j.spans and j.short_answer is not None and token_f1(j.short_answer, j.spans) < 0.5:
        return REASONS[4]
    return None


def _gold_text(j: Judged) -> str:
    if not j.answerable:
        return "(unanswerable)"
    return " / ".join(variants[0] for variants in j.facts) if j.facts else ", ".join(j.gold_docs)


def worst(judged: Sequence[Judged], n: int = WORST) -> list[dict]:
    """The ``n`` worst failures: by reason (``REASONS`` order), then most confident first."""
    failed = [(failure_reason(j), j) for j in judged]
    failed = [(reason, j) for reason, j in failed if reason]
    failed.sort(key=lambda item: (REASONS.index(item[0]), -(item[1].confidence or 0.0)))
    rows = []
    for reason, j in failed[:n]:
        shown = j.short_answer if reason == REASONS[4] else j.answer or ""  # the short answer only when it is the fault
        rows.append({"id": j.id, "question": j.question, "gold": _gold_text(j),
                     "answer": "(declined)" if j.abstained else shown, "first_retrieved": j.retrieved[0] if j.retrieved else None,
                     "reason": reason, "confidence": j.confidence})
    return rows
