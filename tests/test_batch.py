import csv
import json

import pytest

from rag.batch import BadLine, Question, finished_ids, read_questions, run_batch
from rag.errors import RagError
from rag.schema import Answer, Citation, Retrieved


def fake_answer(item: Question) -> Answer:
    return Answer(item.id, item.question, f"Antwort auf {item.question}", item.question.startswith("?"),
                  [Citation(1, "doc", "Titel", "2026-01", "Zitat.", 0, 6, 0.9)],
                  [Retrieved("doc", "doc#0", 0.9, "Zitat. Mehr.")])


def test_read_jsonl_txt_csv_with_bad_lines(tmp_path):
    jsonl = tmp_path / "q.jsonl"
    jsonl.write_text('{"id": "a", "question": "Wie viel?"}\n{kaputt\n\n["list"]\n{"id": "b", "question": "  "}\n{"question": "Ohne id?"}\n',
                     encoding="utf-8")
    items = list(read_questions(jsonl))
    assert items[0] == Question("a", "Wie viel?")
    assert [type(i) for i in items] == [Question, BadLine, BadLine, BadLine, Question]
    assert items[1].line == 2 and "JSON" in items[1].reason and items[4].id == "line-6"
    txt = tmp_path / "q.txt"
    txt.write_text("Erste Frage?\n\nZweite Frage?\n", encoding="utf-8")
    assert [i.id for i in read_questions(txt)] == ["line-1", "line-3"]
    table = tmp_path / "q.csv"
    table.write_text("id,question\nx,Frage eins?\ny,\n", encoding="utf-8")
    assert [type(i) for i in read_questions(table)] == [Question, BadLine]
    assert [type(i) for i in read_questions(txt, max_chars=5)] == [BadLine, BadLine]


@pytest.mark.parametrize("name, content, message", [
    ("q.pdf", b"x", "must be .jsonl"),
    ("missing.jsonl", None, "does not exist"),
    ("latin.txt", "Größe?".encode("latin-1"), "not UTF-8"),
    ("nocol.csv", b"frage\nx\n", "'question' column"),
])
def test_unusable_question_files(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(RagError, match=message):
        list(read_questions(path))


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".md"])
def test_batch_writes_every_good_line_and_resumes(tmp_path, suffix):
    questions = tmp_path / "q.jsonl"
    questions.write_text("".join(json.dumps({"id": f"q{i}", "question": f"Frage {i}?"}) + "\n" for i in range(5))
                         + "{broken\n", encoding="utf-8")
    out = tmp_path / f"out{suffix}"
    warnings = []
    summary = run_batch(questions, out, fake_answer, warn=warnings.append)
    assert (summary.answered, summary.skipped) == (5, 1) and "line 6" in warnings[0]
    assert finished_ids(out) == {f"q{i}" for i in range(5)}
    if suffix == ".jsonl":
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert [r["id"] for r in rows] == [f"q{i}" for i in range(5)] and rows[0]["citations"][0]["quote"] == "Zitat."
    if suffix == ".csv":
        assert [r["id"] for r in csv.DictReader(out.open())] == [f"q{i}" for i in range(5)]
    again = run_batch(questions, out, fake_answer, resume=True)
    assert (again.answered, again.resumed) == (0, 5)


def test_resume_drops_a_torn_last_record(tmp_path):
    questions = tmp_path / "q.txt"
    questions.write_text("Eins?\nZwei?\nDrei?\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    run_batch(questions, out, fake_answer)
    lines = out.read_text().splitlines(keepends=True)
    out.write_text(lines[0] + lines[1][: len(lines[1]) // 2])
    summary = run_batch(questions, out, fake_answer, resume=True)
    assert (summary.answered, summary.resumed) == (2, 1)
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["line-1", "line-2", "line-3"]


def test_answers_computed_at_once_are_written_in_the_files_order(tmp_path):
    """Slow and fast questions on four threads: the records keep the question file's order."""
    import random
    import threading
    import time

    questions = tmp_path / "q.txt"
    questions.write_text("".join(f"Frage {i}?\n" for i in range(30)), encoding="utf-8")
    threads, delays = set(), random.Random(0)

    def slow_answer(item: Question) -> Answer:
        threads.add(threading.current_thread().name)
        time.sleep(delays.random() * 0.02)
        return fake_answer(item)

    out = tmp_path / "out.jsonl"
    summary = run_batch(questions, out, slow_answer, workers=4)
    assert summary.answered == 30 and len(threads) > 1
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == [f"line-{i}" for i in range(1, 31)]


def test_a_failing_answer_stops_the_batch_and_keeps_what_came_before(tmp_path):
    questions = tmp_path / "q.txt"
    questions.write_text("".join(f"Frage {i}?\n" for i in range(200)), encoding="utf-8")
    asked = []

    def answer(item: Question) -> Answer:
        asked.append(item.id)
        if item.id == "line-5":
            raise RagError("kaputt")
        return fake_answer(item)

    out = tmp_path / "out.jsonl"
    with pytest.raises(RagError, match="kaputt"):
        run_batch(questions, out, answer, workers=2)
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == [f"line-{i}" for i in range(1, 5)]
    assert len(asked) < 20  # the questions not yet started were cancelled
