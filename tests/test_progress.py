"""What a user sees of long runs and of the articles they index (issue 18): progress lines when stderr is a log file
or a pipe, a warning per undated article, Markdown titles without `#`, a batch summary whose parts add up."""

import json
import os
import subprocess
import sys

from rag.batch import BatchSummary, run_batch
from rag.progress import Progress, build_percent
from rag.schema import Answer


def test_index_reports_progress_lines_and_undated_articles_when_stderr_is_not_a_terminal(tmp_path):
    articles = tmp_path / "articles"
    articles.mkdir()
    history = " ".join(f"Im Jahr {1980 + i} meldete Kobaltwerk einen Umsatz von {i},5 Milliarden Euro." for i in range(40))
    (articles / "kobalt.md").write_text(f"# Kobaltwerk meldet Rekord\n\n02.02.2026\n\n{history}", encoding="utf-8")
    (articles / "ohne-datum.txt").write_text("Nordlicht plant ein Werk\n\nDie Firma Nordlicht baut ein neues Werk in "
                                             "Kiel. Es soll 400 Arbeitsplätze schaffen.", encoding="utf-8")
    env = dict(os.environ, RAG_PROGRESS_SECONDS="0.01")
    result = subprocess.run([sys.executable, "-m", "rag.cli", "index", articles, "--index-dir", tmp_path / "index",
                             "--json"], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert any(line.startswith("Embedding sentences: ") and "%" in line for line in lines), result.stderr
    assert [line for line in lines if "has no date" in line] == [
        "ohne-datum.txt has no date (none in its header or metadata.json); answers will cite it as undated."]
    titles = {json.loads(line)["title"] for line in (tmp_path / "index" / "articles.jsonl").read_text().splitlines()}
    assert "Kobaltwerk meldet Rekord" in titles


def test_progress_line_every_interval_and_a_final_one_only_after_progress_was_shown():
    lines, heard = [], []
    with Progress(3, "Embedding passages", "passage", log=lines.append, listener=lambda *a: heard.append(a),
                  every=0.0) as bar:
        bar.update(1)
        bar.update(2)
    assert lines[0].startswith("Embedding passages: 1/3 (33 %)") and lines[-1].startswith("Embedding passages: 3/3")
    assert heard == [("passage", 0, 3), ("passage", 1, 3), ("passage", 3, 3)]
    quiet = []
    with Progress(3, "Embedding passages", "passage", log=quiet.append, every=60.0) as bar:
        bar.update(3)
    assert quiet == []  # a short step says nothing


def test_batch_summary_parts_add_up_to_the_questions(tmp_path):
    questions = tmp_path / "fragen.txt"
    questions.write_text("Wer führt Zalando?\nWas kostet der Mond?\n" + "x" * 50 + "\n", encoding="utf-8")

    def answer(item):
        unknown = "Mond" in item.question
        return Answer(item.id, item.question, None if unknown else "Robert Gentz [1].", unknown)

    lines = []
    summary = run_batch(questions, tmp_path / "antworten.jsonl", answer, max_chars=40, warn=lines.append, every=0.0)
    assert summary.text() == "3 Fragen: 1 beantwortet, 1 ohne Beleg in den Artikeln, 1 übersprungen"
    assert any(line.startswith("Questions: ") for line in lines)
    assert BatchSummary(answered=1).text() == "1 Frage: 1 beantwortet, 0 ohne Beleg in den Artikeln, 0 übersprungen"
    assert BatchSummary(answered=2, retrieved_only=2, skipped=1).text() == "3 Fragen: 2 nur Passagen gesucht, 1 übersprungen"


def test_build_percent_moves_through_the_stages_in_order():
    steps = [("article", 0, 5), ("article", 5, 5), ("passage", 0, 60), ("passage", 30, 60), ("passage", 60, 60),
             ("sentence", 0, 300), ("sentence", 300, 300)]
    percents = [build_percent(*step) for step in steps]
    assert percents == sorted(percents) and percents[0] == 0 and percents[-1] == 95
    assert build_percent("passage", 0, 0) == 35 and build_percent("query", 1, 2) is None
