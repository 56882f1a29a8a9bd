"""Metric functions of the evaluation suite, each small enough to check by hand.

Retrieval is scored at the *document* level (an article, or one XQuAD
paragraph): the ranked list holds passages, several of which may come from
one document, so it is first reduced to documents in order of their first
passage (``doc_ranking``). The IR metrics themselves come from ``ranx``
(``Qrels``/``Run``/``evaluate``); ranks are passed to it as strictly
decreasing scores so that ties can never reorder a list.

Answer metrics follow the eval set's format (``eval/questions_de.jsonl``):
``answer`` is a list of facts, each a list of accepted variants.
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

RETRIEVAL_METRICS = ("recall@1", "recall@5", "recall@10", "hit_rate@5", "mrr@10", "ndcg@10")
_NONE = "\x00no-document"


def doc_ranking(doc_ids: Iterable[str]) -> list[str]:
    """Documents in the order of their first passage: ``[a, b, a, c]`` → ``[a, b, c]``."""
    return list(dict.fromkeys(doc_ids))


def retrieval_metrics(gold: Mapping[str, Sequence[str]], ranked: Mapping[str, Sequence[str]],
                      metrics: Sequence[str] = RETRIEVAL_METRICS, per_query: bool = False) -> dict:
    """Mean (or per-query) ranx metrics over the queries that have gold documents.

    ``gold``: query id → relevant doc ids (queries without any are skipped: they
    are the unanswerable ones). ``ranked``: query id → doc ids best first
    (duplicates are removed here, keeping the first occurrence). A query missing
    from ``ranked`` or with an empty list scores 0.
    """
    from ranx import Qrels, Run, evaluate

    queries = sorted(q for q, docs in gold.items() if docs)
    if not queries:
        return {m: (np.zeros(0) if per_query else None) for m in metrics}
    qrels = Qrels({q: {d: 1 for d in gold[q]} for q in queries})
    run_dict = {}
    for q in queries:
        docs = doc_ranking(ranked.get(q, ()))
        run_dict[q] = {d: float(len(docs) - i) for i, d in enumerate(docs)} or {_NONE: 0.0}
    with warnings.catch_warnings():
        # numba 0.68 warns of an "unsafe cast from uint64 to int64" inside ranx's recall for every run: ranks and
        # counts far below 2**63, so the cast is exact; the warning only cluttered the terminal.
        warnings.filterwarnings("ignore", message="unsafe cast from uint64 to int64")
        scores = evaluate(qrels, Run(run_dict), list(metrics), return_mean=not per_query, make_comparable=True,
                          threads=1)
    if len(metrics) == 1:
        scores = {metrics[0]: scores}
    if per_query:
        return {m: np.asarray(v, dtype=float) for m, v in scores.items()}
    return {m: float(v) for m, v in scores.items()}


# --- answers -----------------------------------------------------------------

_DECIMAL = re.compile(r"(?<=\d)[.,](?=\d)")


def normalise_answer(text: str) -> str:
    """Case-folded, NFKC, white space collapsed, decimal/thousands ``,`` and ``.`` between digits unified."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = text.replace("\u2011", "-").replace("\u00ad", "")
    text = _DECIMAL.sub(".", text)
    return re.sub(r"\s+", " ", text).strip()


def contains_variant(answer: str, variant: str) -> bool:
    """``variant`` occurs in ``answer`` after normalisation; a figure must stand alone.

    "14,3" matches "14.3 Mrd" but "39" does not match "139", "3,9" or "39,5":
    a number must not touch further digits or a decimal part.
    """
    haystack, needle = normalise_answer(answer), normalise_answer(variant)
    if not needle:
        return False
    left = r"(?<![\d.])" if needle[0].isdigit() else ""
    right = r"(?![\d]|\.\d)" if needle[-1].isdigit() else ""
    return re.search(left + re.escape(needle) + right, haystack) is not None


def facts_of(answer_spec: Sequence) -> list[list[str]]:
    """The eval set's ``answer`` as a list of facts with variants (a bare string is one fact)."""
    return [[fact] if isinstance(fact, str) else list(fact) for fact in answer_spec]


def answer_correct(answer: str | None, answer_spec: Sequence) -> bool:
    """Every gold fact has at least one accepted variant in the answer (no facts: not judged, False)."""
    facts = facts_of(answer_spec)
    if not answer or not facts:
        return False
    return all(any(contains_variant(answer, v) for v in variants) for variants in facts)


# --- citations ---------------------------------------------------------------


def evidence_spans(article_text: str, evidence: Sequence[str]) -> list[tuple[int, int]]:
    """``[start, end)`` of every occurrence of every evidence sentence in the article's text."""
    spans = []
    for sentence in evidence:
        start = article_text.find(sentence)
        while start >= 0:
            spans.append((start, start + len(sentence)))
            start = article_text.find(sentence, start + 1)
    return spans


def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Half-open intervals share at least one character."""
    return max(a[0], b[0]) < min(a[1], b[1])


def citation_valid(citation: Mapping, articles: Mapping[str, str]) -> bool:
    """The quote is exactly the article's text at ``[start, end)``."""
    text = articles.get(citation.get("doc_id"))
    start, end = citation.get("start"), citation.get("end")
    if text is None or not isinstance(start, int) or not isinstance(end, int) or not 0 <= start < end <= len(text):
        return False
    return text[start:end] == citation.get("quote")


def citation_supported(citation: Mapping, gold_docs: Sequence[str], evidence: Sequence[str],
                       articles: Mapping[str, str]) -> bool:
    """The cited article is a gold document and the cited span overlaps a gold evidence sentence in it."""
    doc_id = citation.get("doc_id")
    if doc_id not in gold_docs or doc_id not in articles:
        return False
    start, end = citation.get("start"), citation.get("end")
    if not isinstance(start, int) or not isinstance(end, int):
        return False
    return any(overlaps((start, end), span) for span in evidence_spans(articles[doc_id], evidence))


def evidence_metrics(items: Sequence[tuple[Sequence[tuple[str, int, int]], Sequence[str], Sequence[str]]],
                     articles: Mapping[str, str], ks: Sequence[int] = (1, 3, 5)) -> dict:
    """Passage-level retrieval: do the top passages contain the gold evidence?

    ``items``: per question ``(passages, gold_docs, evidence)`` with passages as
    ``(doc_id, start, end)`` best first. A passage *covers* an evidence sentence
    when it lies in a gold article and overlaps one of the sentence's occurrences
    there. ``evidence_hit@k``: some top-k passage covers some evidence sentence.
    ``evidence_recall@k`` (k = max(ks)): share of the question's evidence
    sentences covered by the top-k passages. Questions without locatable
    evidence are skipped.
    """
    hits = {k: [] for k in ks}
    recall = []
    top = max(ks)
    for passages, gold_docs, evidence in items:
        located = []
        for sentence in evidence:
            spans = [(d, span) for d in gold_docs if d in articles for span in evidence_spans(articles[d], [sentence])]
            if spans:
                located.append(spans)
        if not located:
            continue

        def covers(passage, spans) -> bool:
            return any(passage[0] == d and overlaps((passage[1], passage[2]), span) for d, span in spans)

        for k in ks:
            hits[k].append(any(covers(p, spans) for p in passages[:k] for spans in located))
        recall.append(sum(any(covers(p, spans) for p in passages[:top]) for spans in located) / len(located))
    out = {f"evidence_hit@{k}": (sum(v) / len(v) if v else None) for k, v in hits.items()}
    out[f"evidence_recall@{top}"] = sum(recall) / len(recall) if recall else None
    out["evidence_questions"] = len(recall)
    return out


@dataclass
class AnswerRecord:
    """One answered eval question, as the answer metrics need it."""

    answerable: bool
    abstained: bool
    answer: str | None
    answer_spec: Sequence
    citations: Sequence[Mapping]
    gold_docs: Sequence[str]
    evidence: Sequence[str]


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def answer_metrics(records: Sequence[AnswerRecord], articles: Mapping[str, str]) -> dict:
    """Answer correctness, citation precision/validity/hit rate, abstention precision/recall.

    - ``answer_correctness``: answerable questions answered (not abstained) with every gold fact.
    - ``citation_precision``: citations of answered answerable questions that point into a gold
      article and overlap a gold evidence sentence (micro-averaged over citations).
    - ``citation_hit``: answered answerable questions with at least one such citation.
    - ``citation_validity``: all citations whose quote equals the article text at its offsets.
    - ``abstention_precision``/``recall``: abstaining as the positive class, unanswerable as truth.
    None means the denominator was empty.
    """
    answerable = [r for r in records if r.answerable]
    answered = [r for r in answerable if not r.abstained]
    cited = [c for r in answered for c in r.citations]
    supported = sum(citation_supported(c, r.gold_docs, r.evidence, articles) for r in answered for c in r.citations)
    all_citations = [c for r in records for c in r.citations]
    abstained = [r for r in records if r.abstained]
    unanswerable = [r for r in records if not r.answerable]
    true_abstentions = sum(1 for r in abstained if not r.answerable)
    return {
        "answer_correctness": _ratio(sum(answer_correct(r.answer, r.answer_spec) for r in answered), len(answerable)),
        "citation_precision": _ratio(supported, len(cited)),
        "citation_hit": _ratio(sum(any(citation_supported(c, r.gold_docs, r.evidence, articles) for c in r.citations)
                                   for r in answered), len(answered)),
        "citation_validity": _ratio(sum(citation_valid(c, articles) for c in all_citations), len(all_citations)),
        "abstention_precision": _ratio(true_abstentions, len(abstained)),
        "abstention_recall": _ratio(true_abstentions, len(unanswerable)),
        "answered": len(answered),
        "abstained": len(abstained),
    }


# --- latency -----------------------------------------------------------------


def latency_summary(seconds: Sequence[float]) -> dict:
    """p50/p95/mean/max in milliseconds (linear interpolation between order statistics)."""
    if len(seconds) == 0:
        return {"n": 0, "p50_ms": None, "p95_ms": None, "mean_ms": None, "max_ms": None}
    ms = np.asarray(seconds, dtype=float) * 1000.0
    return {"n": int(ms.size), "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p95_ms": round(float(np.percentile(ms, 95)), 2), "mean_ms": round(float(ms.mean()), 2),
            "max_ms": round(float(ms.max()), 2)}
