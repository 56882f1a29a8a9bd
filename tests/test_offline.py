"""index → ask → batch → chat /answer with every non-loopback connection refused and HF_HUB_OFFLINE=1."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, SEEDS

GUARD = Path(__file__).resolve().parent / "offline_guard"


@pytest.fixture
def offline_env(tmp_path):
    log = tmp_path / "blocked.log"
    log.write_text("", encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(GUARD), os.environ.get("PYTHONPATH", "")]),
               RAG_OFFLINE_LOG=str(log), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")
    return env, log


def run(env, *args):
    result = subprocess.run([sys.executable, "-m", "rag.cli", *map(str, args)], capture_output=True, text=True,
                            env=env, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return result


def test_guard_really_blocks(offline_env):
    env, log = offline_env
    probe = subprocess.run([sys.executable, "-c", "import socket; socket.create_connection(('192.0.2.1', 80), timeout=2)"],
                           capture_output=True, text=True, env=env, timeout=60)
    assert probe.returncode != 0 and "blocked by the offline test" in probe.stderr
    assert "192.0.2.1" in log.read_text()


def test_whole_pipeline_runs_offline(offline_env, tmp_path):
    env, log = offline_env
    index_dir = tmp_path / "idx"
    run(env, "index", SEEDS, "--index-dir", index_dir)
    answer = json.loads(run(env, "ask", "Wie viel investiert Meta 2026?", "--index-dir", index_dir, "--json").stdout)
    assert "115" in answer["answer"] and "135" in answer["answer"]
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"id": "a", "question": "Wer leitet Scale AI?"}\n', encoding="utf-8")
    run(env, "batch", questions, "--out", tmp_path / "out.jsonl", "--index-dir", index_dir)
    assert json.loads((tmp_path / "out.jsonl").read_text())["id"] == "a"

    pytest.importorskip("gradio_client")
    import chat_app
    from gradio_client import Client

    old = dict(os.environ)
    os.environ.update(env)
    try:
        app = chat_app.start(index_dir, tmp_path / "chat")
    finally:
        os.environ.clear()
        os.environ.update(old)
    try:
        result = Client(app.url, verbose=False).predict("Wie viel investiert Meta 2026?", api_name="/answer")
        result = json.loads(result) if isinstance(result, str) else result
        assert "135" in result["answer"]
    finally:
        app.process.terminate()
        app.process.wait(timeout=30)
    assert log.read_text() == "", f"connections outside this machine were attempted:\n{log.read_text()}"
