"""Consistency of the German eval sets: the held-out file must stand on the articles alone.

eval/questions_de_heldout.jsonl was written after the answerer was frozen and nobody tunes on it, so a typo in
an evidence quote or an answer that the quoted text does not contain would silently turn into a "wrong answer".
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTICLES = {p.stem: p.read_text(encoding="utf-8") for p in (ROOT / "seeds").glob("*.txt")}
FIELDS = {"id", "question", "type", "lang", "gold_docs", "evidence", "answer", "answerable", "follow_up_of",
          "standalone", "note"}


def rows(name: str) -> list[dict]:
    lines = (ROOT / "eval" / name).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


HELDOUT = rows("questions_de_heldout.jsonl")


def test_heldout_has_40_questions_with_unique_ids_and_the_eval_set_fields():
    ids = [q["id"] for q in HELDOUT]
    assert ids == [f"h{i:03d}" for i in range(1, 41)]
    assert all(set(q) == FIELDS for q in HELDOUT)
    assert not {q["question"] for q in HELDOUT} & {q["question"] for q in rows("questions_de.jsonl")}
    assert 8 <= sum(not q["answerable"] for q in HELDOUT) <= 12
    assert sum(q["lang"] == "en" for q in HELDOUT) >= 3


@pytest.mark.parametrize("question", HELDOUT, ids=lambda q: q["id"])
def test_heldout_evidence_is_verbatim_and_contains_the_answer(question):
    if not question["answerable"]:
        assert question["gold_docs"] == question["evidence"] == question["answer"] == []
        return
    assert question["gold_docs"] and set(question["gold_docs"]) <= set(ARTICLES)
    for sentence in question["evidence"]:
        assert any(sentence in ARTICLES[doc] for doc in question["gold_docs"]), sentence
    evidence = " ".join(question["evidence"]).lower()
    for alternatives in question["answer"]:
        assert any(a.lower() in evidence for a in alternatives), alternatives
