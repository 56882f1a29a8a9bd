"""Metric functions against values computed by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import math

import pytest

from rag.eval.metrics import (AnswerRecord, answer_correct, answer_metrics, citation_supported, citation_valid,
                         contains_variant, doc_ranking, evidence_metrics, evidence_spans, latency_summary,
                         normalise_answer, retrieval_metrics)


def test_doc_ranking_keeps_first_occurrence():
    assert doc_ranking(["a", "b", "a", "c", "b"]) == ["a", "b", "c"]
    assert doc_ranking([]) == []


# Three scored queries (q3 has no gold document and is skipped):
#   q1 gold {a}:    passages [b, a, a, c]          → docs [b, a, c]:  a at rank 2
#   q2 gold {c, d}: passages [c, c, c, x, c, d]    → docs [c, x, d]:  c at 1, d at 3
#   q4 gold {e}:    nothing retrieved
GOLD = {"q1": ["a"], "q2": ["c", "d"], "q3": [], "q4": ["e"]}
RANKED = {"q1": ["b", "a", "a", "c"], "q2": ["c", "c", "c", "x", "c", "d"], "q3": ["a"], "q4": []}


def test_retrieval_metrics_per_query_by_hand():
    scores = retrieval_metrics(GOLD, RANKED, per_query=True)
    # ranx orders queries by id: q1, q2, q4
    assert list(scores["recall@1"]) == pytest.approx([0.0, 0.5, 0.0])
    # without de-duplication d would be at passage rank 6 and q2's Recall@5 would be 0.5
    assert list(scores["recall@5"]) == pytest.approx([1.0, 1.0, 0.0])
    assert list(scores["hit_rate@5"]) == pytest.approx([1.0, 1.0, 0.0])
    assert list(scores["mrr@10"]) == pytest.approx([0.5, 1.0, 0.0])
    # q1: DCG = 1/log2(3), IDCG = 1                   → 0.630930
    # q2: DCG = 1 + 1/log2(4) = 1.5, IDCG = 1 + 1/log2(3) = 1.630930 → 0.919721
    ndcg_q1 = 1 / math.log2(3)
    ndcg_q2 = 1.5 / (1 + 1 / math.log2(3))
    assert list(scores["ndcg@10"]) == pytest.approx([ndcg_q1, ndcg_q2, 0.0], abs=1e-6)
    assert ndcg_q1 == pytest.approx(0.630930, abs=1e-6) and ndcg_q2 == pytest.approx(0.919721, abs=1e-6)


def test_retrieval_metrics_means_by_hand():
    scores = retrieval_metrics(GOLD, RANKED)
    assert scores["recall@1"] == pytest.approx(0.5 / 3)       # (0 + 0.5 + 0) / 3
    assert scores["recall@5"] == pytest.approx(2 / 3)         # (1 + 1 + 0) / 3
    assert scores["recall@10"] == pytest.approx(2 / 3)
    assert scores["mrr@10"] == pytest.approx(0.5)             # (0.5 + 1 + 0) / 3
    assert scores["ndcg@10"] == pytest.approx((0.630930 + 0.919721) / 3, abs=1e-6)


def test_retrieval_metrics_cut_offs_and_order():
    # gold at document rank 6: outside @5, inside @10; MRR 1/6
    gold = {"q": ["g"]}
    ranked = {"q": ["a", "b", "c", "d", "e", "g", "h"]}
    scores = retrieval_metrics(gold, ranked)
    assert (scores["recall@1"], scores["recall@5"], scores["recall@10"]) == (0.0, 0.0, 1.0)
    assert scores["mrr@10"] == pytest.approx(1 / 6)
    assert scores["ndcg@10"] == pytest.approx(1 / math.log2(7))
    # rank 11 is beyond every cut-off
    far = {"q": [f"x{i}" for i in range(10)] + ["g"]}
    assert retrieval_metrics(gold, far)["recall@10"] == 0.0
    assert retrieval_metrics(gold, far)["mrr@10"] == 0.0


def test_retrieval_metrics_without_gold_queries():
    assert retrieval_metrics({"q": []}, {"q": ["a"]}, ("recall@1",)) == {"recall@1": None}


def test_retrieval_metrics_print_no_numba_warning():
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        retrieval_metrics({"q": ["a"]}, {"q": ["b", "a"]})
    assert not [w for w in caught if "unsafe cast" in str(w.message)]


def test_normalise_and_figures():
    assert normalise_answer("  14,3  Milliarden ") == "14.3 milliarden"
    assert contains_variant("Der Umsatz lag bei 14.3 Mrd. Dollar.", "14,3")
    assert contains_variant("rund 39 Milliarden", "39")
    assert not contains_variant("etwa 139 Milliarden", "39")
    assert not contains_variant("3,9 Milliarden", "39")
    assert not contains_variant("39,5 Milliarden", "39")
    assert not contains_variant("2039", "39")
    assert contains_variant("Finanzchefin SUSAN LI sagte", "Susan Li")
    assert contains_variant("1.000 Stellen", "1,000")
    assert not contains_variant("irgendwas", "")


def test_answer_correct_needs_every_fact():
    spec = [["115"], ["135"]]
    assert answer_correct("Meta plant 115 bis 135 Milliarden Dollar [1].", spec)
    assert not answer_correct("Meta plant 115 Milliarden Dollar.", spec)
    assert answer_correct("Ray Ban Brillen", [["Ray-Ban", "Ray Ban"]])
    assert answer_correct("13.5 Milliarden, plus 73 Prozent", [["73"], ["13,5", "13.5"]])
    assert not answer_correct(None, spec)
    assert not answer_correct("115 und 135", [])
    assert answer_correct("Es sind 72 Milliarden.", ["72"])  # a bare string is one fact


ARTICLES = {"A": "Erster Satz. Meta investiert 115 Milliarden. Letzter Satz.", "B": "Anderes Thema hier."}
EVIDENCE = ["Meta investiert 115 Milliarden."]  # at [13, 44) of A


def test_evidence_spans_and_citations():
    assert evidence_spans(ARTICLES["A"], EVIDENCE) == [(13, 44)]
    assert evidence_spans(ARTICLES["A"], ["fehlt"]) == []
    good = {"doc_id": "A", "quote": "Meta investiert 115", "start": 13, "end": 32}
    assert citation_valid(good, ARTICLES)
    assert citation_supported(good, ["A"], EVIDENCE, ARTICLES)
    shifted = dict(good, start=14, end=33)
    assert not citation_valid(shifted, ARTICLES)                      # quote no longer at its offsets
    assert citation_supported(shifted, ["A"], EVIDENCE, ARTICLES)     # but the span still overlaps the evidence
    outside = {"doc_id": "A", "quote": "Erster Satz.", "start": 0, "end": 12}
    assert citation_valid(outside, ARTICLES) and not citation_supported(outside, ["A"], EVIDENCE, ARTICLES)
    touching = {"doc_id": "A", "quote": "Erster Satz. ", "start": 0, "end": 13}  # [0,13) ends where evidence starts
    assert not citation_supported(touching, ["A"], EVIDENCE, ARTICLES)
    wrong_doc = {"doc_id": "B", "quote": "Anderes", "start": 0, "end": 7}
    assert citation_valid(wrong_doc, ARTICLES) and not citation_supported(wrong_doc, ["A"], EVIDENCE, ARTICLES)
    assert not citation_valid({"doc_id": "C", "quote": "x", "start": 0, "end": 1}, ARTICLES)
    assert not citation_valid({"doc_id": "A", "quote": "", "start": 5, "end": 5}, ARTICLES)


def test_answer_metrics_by_hand():
    good = {"doc_id": "A", "quote": "Meta investiert 115 Milliarden.", "start": 13, "end": 44}
    bad_offsets = {"doc_id": "A", "quote": "Meta investiert 115 Milliarden.", "start": 0, "end": 31}
    other = {"doc_id": "B", "quote": "Anderes Thema hier.", "start": 0, "end": 19}
    records = [
        # answerable, answered correctly, two citations: one supported+valid, one in a non-gold doc
        AnswerRecord(True, False, "Es sind 115 Milliarden [1][2].", [["115"]], [good, other], ["A"], EVIDENCE),
        # answerable, answered wrongly, one citation with wrong offsets (overlaps evidence [13,44): yes, 0..31)
        AnswerRecord(True, False, "Es sind 120 Milliarden [1].", [["115"]], [bad_offsets], ["A"], EVIDENCE),
        # answerable but abstained (counts as not correct)
        AnswerRecord(True, True, "Dazu steht nichts in den Artikeln.", [["115"]], [], ["A"], EVIDENCE),
        # unanswerable, abstained (true abstention), lists a nearest passage
        AnswerRecord(False, True, "Dazu steht nichts in den Artikeln.", [], [other], [], []),
        # unanswerable, answered anyway
        AnswerRecord(False, False, "Apple investiert 50 Milliarden.", [], [], [], []),
    ]
    m = answer_metrics(records, ARTICLES)
    assert m["answer_correctness"] == pytest.approx(1 / 3)    # 1 correct of 3 answerable
    assert m["citation_precision"] == pytest.approx(2 / 3)    # answered answerable: good ✓, other ✗, bad_offsets ✓ (overlap)
    assert m["citation_hit"] == pytest.approx(2 / 2)          # both answered answerable have a supported citation
    assert m["citation_validity"] == pytest.approx(3 / 4)     # good, other, other ✓; bad_offsets ✗
    assert m["abstention_precision"] == pytest.approx(1 / 2)  # 2 abstained, 1 of them unanswerable
    assert m["abstention_recall"] == pytest.approx(1 / 2)     # 2 unanswerable, 1 abstained
    assert (m["answered"], m["abstained"]) == (2, 2)


def test_answer_metrics_empty_denominators_are_none():
    m = answer_metrics([AnswerRecord(True, False, "115", [["115"]], [], ["A"], EVIDENCE)], ARTICLES)
    assert m["answer_correctness"] == 1.0
    assert m["citation_precision"] is None and m["citation_validity"] is None
    assert m["abstention_precision"] is None and m["abstention_recall"] is None


def test_evidence_metrics_by_hand():
    articles = {"A": "S1 eins. S2 zwei. S3 drei.", "B": "T1 vier."}
    # evidence "S2 zwei." at [9, 17) of A, "T1 vier." at [0, 8) of B
    items = [
        # q1: evidence in A only; top-1 passage misses ([0,8)), top-2 hits → hit@1 0, hit@3 1, recall 1/1
        ([("A", 0, 8), ("A", 9, 17)], ["A"], ["S2 zwei."]),
        # q2: two evidence sentences (A and B); top passages cover only B's → hit@1 1, recall@5 1/2
        ([("B", 0, 8), ("A", 18, 26)], ["A", "B"], ["S2 zwei.", "T1 vier."]),
        # q3: passage overlaps the sentence, but in a non-gold article → no hit, recall 0
        ([("A", 9, 17)], ["B"], ["T1 vier."]),
        # q4: evidence not found in any gold article → skipped
        ([("A", 0, 5)], ["A"], ["gibt es nicht"]),
    ]
    m = evidence_metrics(items, articles, ks=(1, 3, 5))
    assert m["evidence_questions"] == 3
    assert m["evidence_hit@1"] == pytest.approx(1 / 3)
    assert m["evidence_hit@3"] == pytest.approx(2 / 3)
    assert m["evidence_hit@5"] == pytest.approx(2 / 3)
    assert m["evidence_recall@5"] == pytest.approx((1 + 0.5 + 0) / 3)


def test_latency_summary_by_hand():
    s = latency_summary([0.004, 0.001, 0.003, 0.002])
    # sorted ms [1, 2, 3, 4]: p50 = 2.5; p95 at position 0.95·3 = 2.85 → 3 + 0.85·(4 − 3) = 3.85
    assert s == {"n": 4, "p50_ms": 2.5, "p95_ms": 3.85, "mean_ms": 2.5, "max_ms": 4.0}
    assert latency_summary([])["p50_ms"] is None
