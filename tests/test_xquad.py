"""XQuAD-de → one-paragraph articles and questions with gold paragraph ids, split by article."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from rag.ingest.corpus import load_folder
from rag.errors import RagError
from rag.eval.xquad import (TUNE_ARTICLES, default_source, doc_id_for, load_xquad, parse_doc_id, prepare, read_questions,
                       slug, split_of)

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "eval" / "xquad-de"


def test_committed_copy_keeps_its_licence():
    assert (DATA / "xquad.de.json").exists()
    licence = (DATA / "LICENSE.txt").read_text(encoding="utf-8")
    assert "Attribution-ShareAlike 4.0" in licence
    assert default_source() == DATA / "xquad.de.json"


def test_counts_and_split_by_article():
    paragraphs, questions = load_xquad()
    assert len(paragraphs) == 240 and len(questions) == 1190
    assert len({p.article for p in paragraphs}) == 48
    assert len({q.id for q in questions}) == 1190
    assert len({p.doc_id for p in paragraphs}) == 240
    by_split = Counter(p.split for p in paragraphs)
    assert by_split == {"tune": 120, "heldout": 120}
    # no article has paragraphs (or questions) in both halves
    splits_per_article = {}
    for p in paragraphs:
        splits_per_article.setdefault(p.article, set()).add(p.split)
    assert all(len(s) == 1 for s in splits_per_article.values())
    assert {q.split for q in questions if q.article < TUNE_ARTICLES} == {"tune"}
    assert {q.split for q in questions if q.article >= TUNE_ARTICLES} == {"heldout"}
    assert Counter(q.split for q in questions) == {"tune": 632, "heldout": 558}


def test_gold_paragraph_contains_the_answer():
    paragraphs, questions = load_xquad()
    text = {p.doc_id: p.text for p in paragraphs}
    for q in questions:
        assert len(q.gold_docs) == 1 and q.gold_docs[0] in text
        assert any(answer in text[q.gold_docs[0]] for answer in q.answers), q.id


def test_doc_ids_map_back_to_the_paragraph():
    paragraphs, _ = load_xquad()
    raw = json.loads((DATA / "xquad.de.json").read_text(encoding="utf-8"))["data"]
    for p in paragraphs:
        article, paragraph = parse_doc_id(p.doc_id)
        assert raw[article]["paragraphs"][paragraph]["context"].lstrip("\ufeff") == p.text
    assert doc_id_for(7, 3, "Fresno,_California") == "07_3_Fresno_California"
    assert slug("Sky_(United_Kingdom)") == "Sky_United_Kingdom"
    assert parse_doc_id("07_3_Fresno_California") == (7, 3)
    with pytest.raises(ValueError):
        parse_doc_id("002_ce2073f525773260")
    assert split_of(23) == "tune" and split_of(24) == "heldout"


def test_prepare_writes_an_indexable_folder(tmp_path):
    prepared = prepare(workdir=tmp_path)
    files = sorted(prepared.paragraph_dir.glob("*.txt"))
    assert prepared.paragraphs == len(files) == 240
    articles, skipped = load_folder(prepared.paragraph_dir)
    assert not skipped and len(articles) == 240
    paragraphs, _ = load_xquad()
    stored = {a.doc_id: a.text for a in articles}
    # the indexed text is the paragraph itself, so gold ids and offsets refer to it
    assert all(stored[p.doc_id] == p.text.strip() for p in paragraphs)
    questions = read_questions(prepared.questions)
    assert len(questions) == prepared.question_count == 1190
    assert all(q.gold_docs[0] in stored for q in questions)
    lines = prepared.questions.read_text(encoding="utf-8").splitlines()
    assert {"id", "question", "gold_docs", "split"} <= set(json.loads(lines[0]))


def test_prepare_is_idempotent_and_removes_stale_files(tmp_path):
    prepared = prepare(workdir=tmp_path)
    first = prepared.paragraph_dir / "00_0_Super_Bowl_50.txt"
    stale = prepared.paragraph_dir / "99_0_old.txt"
    stale.write_text("alt", encoding="utf-8")
    first.write_text("verändert", encoding="utf-8")
    second = prepare(workdir=tmp_path)
    assert not stale.exists()
    assert first.read_text(encoding="utf-8").startswith("Die Verteidigung der Panthers")
    untouched = prepared.paragraph_dir / "00_1_Super_Bowl_50.txt"
    before = untouched.stat().st_mtime_ns
    prepare(workdir=tmp_path)
    assert untouched.stat().st_mtime_ns == before and second.paragraphs == 240


def test_bad_sources_are_clear_errors(tmp_path):
    with pytest.raises(RagError, match="does not exist"):
        load_xquad(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"data": [{"title": "x"}]}', encoding="utf-8")
    with pytest.raises(RagError, match="SQuAD-format"):
        load_xquad(broken)


def test_small_squad_file(tmp_path):
    source = tmp_path / "mini.json"
    source.write_text(json.dumps({"version": "1.1", "data": [
        {"title": "Eins", "paragraphs": [{"context": "Berlin ist die Hauptstadt.", "qas": [
            {"id": "a", "question": " Was ist Berlin? ", "answers": [{"text": "die Hauptstadt", "answer_start": 11},
                                                                   {"text": "die Hauptstadt", "answer_start": 11}]}]}]},
    ]}), encoding="utf-8")
    paragraphs, questions = load_xquad(source)
    assert [p.doc_id for p in paragraphs] == ["00_0_Eins"]
    assert questions[0].question == "Was ist Berlin?" and questions[0].answers == ["die Hauptstadt"]
    assert questions[0].split == "tune"
