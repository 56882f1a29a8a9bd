"""The real `rag` command in a subprocess: exit codes, one-sentence errors, JSON output."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import SEEDS


def rag(*args, env=None, cwd=None):
    environment = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "rag.cli", *map(str, args)], capture_output=True, text=True,
                          env=environment, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def seeds_index(tmp_path_factory):
    index_dir = tmp_path_factory.mktemp("cli") / "idx"
    result = rag("index", SEEDS, "--index-dir", index_dir, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["articles"] == 5 and report["chunks"] > 20
    return index_dir


def assert_clean_error(result, text):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert text in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_help_is_clean_and_batch_help_lists_the_formats():
    """At 80 columns, for every command: no type placeholders (<bool>, <str>), nothing cut with "…"; `batch` spells
    out its formats."""
    top, batch = rag("--help", env={"COLUMNS": "80"}), rag("batch", "--help", env={"COLUMNS": "80"})
    assert top.returncode == 0 and batch.returncode == 0
    for command in ("index", "search", "ask", "batch", "eval", "chat", "bench"):
        assert f"  {command} " in top.stdout
    others = [rag(c, "--help", env={"COLUMNS": "80"}) for c in ("index", "search", "ask", "chat", "eval", "bench",
                                                                 "train-answerer", "translate-questions")]
    assert all(r.returncode == 0 for r in others)
    for out in (top.stdout, batch.stdout, *(r.stdout for r in others)):
        text = "\n".join(line for line in out.splitlines() if not line.startswith("Usage:"))  # click's "[ARGS]..."
        assert not re.search(r"<[a-z ]+>", text) and "…" not in text and "..." not in text, out
        assert max(len(line) for line in out.splitlines()) <= 80, out
    for fmt in (".jsonl", ".txt", ".csv", ".md", '"question"', '"id"'):
        assert fmt in batch.stdout, fmt


def test_search_json_finds_the_2026_figure(seeds_index):
    result = rag("search", "Wie viel investiert Meta 2026?", "--index-dir", seeds_index, "-k", "3", "--json")
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)
    assert len(hits) == 3 and any("135 Milliarden" in h["text"] for h in hits)


def test_unchanged_reindex_embeds_nothing(seeds_index):
    result = rag("index", SEEDS, "--index-dir", seeds_index, "--json")
    assert json.loads(result.stdout)["embedded"] == 0


def test_batch_retrieve_only_with_a_bad_line(seeds_index, tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"id": "a", "question": "Wie viel investiert Meta 2026?"}\nnot json\n'
                         '{"id": "b", "question": "Wer ist Finanzchefin?"}\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = rag("batch", questions, "--out", out, "--index-dir", seeds_index, "--retrieve-only")
    assert result.returncode == 0, result.stderr
    assert "line 2 skipped" in result.stderr and "Traceback" not in result.stderr
    assert "3 Fragen: 2 nur Passagen gesucht, 1 übersprungen" in result.stderr and "beantwortet" not in result.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["a", "b"]
    assert all(r["answer"] is None and len(r["retrieved"]) == 10 for r in rows)
    assert set(rows[0]) >= {"id", "question", "answer", "abstained", "citations", "retrieved"}


def test_bad_article_among_good_ones_is_skipped_with_warning(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    shutil.copy(SEEDS / "002_ce2073f525773260.txt", folder)
    (folder / "bad.txt").write_bytes("Größe".encode("latin-1"))
    (folder / "image.md").write_bytes(b"\x89PNG\x00\x01")
    result = rag("index", folder, "--index-dir", tmp_path / "idx", "--json")
    assert result.returncode == 0, result.stderr
    assert "bad.txt skipped" in result.stderr and "image.md skipped" in result.stderr
    assert json.loads(result.stdout)["articles"] == 1


def test_user_errors_are_one_sentence_without_traceback(seeds_index, tmp_path):
    assert_clean_error(rag("search", "   ", "--index-dir", seeds_index), "question is empty")
    assert_clean_error(rag("index", tmp_path / "missing", "--index-dir", tmp_path / "i"), "does not exist")
    (tmp_path / "empty").mkdir()
    assert_clean_error(rag("index", tmp_path / "empty", "--index-dir", tmp_path / "i"), "no readable")
    assert_clean_error(rag("search", "Frage?", "--index-dir", tmp_path / "nothing"), "no index")
    assert_clean_error(rag("batch", tmp_path / "none.jsonl", "--out", tmp_path / "o.jsonl", "--index-dir", seeds_index,
                           "--retrieve-only"), "does not exist")
    foreign = rag("search", "Frage?", "--index-dir", seeds_index, env={"RAG_EMBEDDER": "st:/models/other-model"})
    assert_clean_error(foreign, "built with the embedding model")
    assert_clean_error(rag("search", "Frage?", env={"RAG_TOP_K": "-3"}), "Invalid setting")


def test_damaged_index_is_reported(seeds_index, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(seeds_index, broken)
    (broken / "dense.faiss").write_bytes(b"garbage")
    assert_clean_error(rag("search", "Frage?", "--index-dir", broken), "damaged")
