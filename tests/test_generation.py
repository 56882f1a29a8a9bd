"""Generated answers: prompt, OpenAI-compatible client against a stand-in server on loopback, checks, fallback.

The stand-in server is a real HTTP server on 127.0.0.1 (a free port) that records each request and answers
with a scripted text, streamed as server-sent events when asked to stream.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import rag.answer.generation as generation
from rag.answer.answering import GenerativeAnswerer
from rag.errors import RagError
from rag.answer.generation import (REFUSAL, Generator, Passage, ServerClient, assemble_model, build_messages, make_backend,
                            refused)
from rag.answer.grounding import check_quotes, figures
from rag.retrieve.retrieval import Retriever
from rag.schema import Hit

RAG = str(Path(sys.executable).with_name("rag"))
ARTICLE = ("Meta zahlt für Scale AI. 14,3 Milliarden Dollar für Scale-AI und dessen CEO Alexandr Wang. "
           "Der Quartalsgewinn legte um neun Prozent auf 22,77 Milliarden Dollar zu.")


class StandIn:
    """State of the stand-in server: what to answer, what it was asked."""

    def __init__(self) -> None:
        self.reply = "Antwort [1]."
        self.status = 200
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.url = ""


def _handler(state: StandIn):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.requests.append({"path": self.path, **body})
            state.headers.append(dict(self.headers))
            if state.status != 200:
                self.send_response(state.status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"error": "model overloaded"}')
                return
            if not body.get("stream"):
                payload = {"choices": [{"index": 0, "message": {"role": "assistant", "content": state.reply}}]}
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            words = state.reply.split(" ")
            for i, word in enumerate(words):
                piece = word if i == 0 else " " + word
                event = {"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")

    return Handler


@pytest.fixture
def chat_server():
    state = StandIn()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def hit(text: str = ARTICLE, start: int = 0) -> Hit:
    return Hit("001_x", "001_x#0", 1.0, text, start, start + len(text), "Wofür Meta so viel Geld ausgibt", "2025-07",
               False)


def passage(n: int, text: str, start: int, date: str = "2025-07") -> Passage:
    return Passage(n, "001_x", "Titel", date, False, start, start + len(text), text)


# --- prompt and passages ---------------------------------------------------------------------------------------


def test_prompt_numbers_and_dates_the_passages_after_fixed_instructions():
    messages = build_messages("Wie viel zahlt Meta?", [passage(1, "14,3 Milliarden Dollar.", 0),
                                                         passage(2, "Neun Prozent.", 30, "2026-01-28")])
    assert messages[0]["role"] == "system" and messages[-1]["role"] == "user"
    assert "[1] (Juli 2025) 14,3 Milliarden Dollar." in messages[-1]["content"]
    assert "[2] (28. Januar 2026) Neun Prozent." in messages[-1]["content"]
    assert messages[-1]["content"].endswith("Frage: Wie viel zahlt Meta?")
    assert any(m["content"] == REFUSAL for m in messages[:-1])  # the worked refusal example


def test_refusals_in_our_or_the_models_words():
    assert refused(REFUSAL)
    assert refused("Dazu enthält der Kontext keine Angabe.")
    assert not refused("Meta zahlt 14,3 Milliarden Dollar [1].")


# --- the OpenAI-compatible client ------------------------------------------------------------------------------


def test_server_client_streams_and_sends_model_and_key(chat_server, monkeypatch):
    chat_server.reply = "Meta zahlt 14,3 Milliarden Dollar [1]."
    monkeypatch.setenv("TEST_RAG_KEY", "geheim")
    from rag.settings import Settings

    settings = Settings(answerer="server", llm_url=chat_server.url, llm_model="stand-in", llm_api_key_env="TEST_RAG_KEY")
    client = make_backend(settings)
    pieces = list(client.stream([{"role": "user", "content": "Frage"}]))
    assert len(pieces) == 6 and "".join(pieces) == chat_server.reply
    request = chat_server.requests[-1]
    assert request["path"] == "/v1/chat/completions" and request["stream"] is True and request["model"] == "stand-in"
    assert chat_server.headers[-1]["Authorization"] == "Bearer geheim"
    assert client.complete([{"role": "user", "content": "Frage"}]) == chat_server.reply
    assert chat_server.requests[-1]["stream"] is False


def test_server_errors_are_one_clear_sentence(chat_server, free_port):
    chat_server.status = 503
    with pytest.raises(RagError, match="HTTP 503.*model overloaded"):
        list(ServerClient(chat_server.url, "m").stream([{"role": "user", "content": "x"}]))
    with pytest.raises(RagError, match="not reachable"):
        list(ServerClient(f"http://127.0.0.1:{free_port}/v1", "m", timeout=5).stream([{"role": "user", "content": "x"}]))
    with pytest.raises(RagError, match="http:// or https://"):
        ServerClient("ftp://example.org", "m")


# --- the generator: checks and fallback ------------------------------------------------------------------------


def generator_for(chat_server) -> Generator:
    from rag.settings import Settings

    return Generator(ServerClient(chat_server.url, "m"), Settings(answerer="server", llm_url=chat_server.url))


BEST = "14,3 Milliarden Dollar für Scale-AI und dessen CEO Alexandr Wang."
GIVEN = [passage(1, BEST, ARTICLE.index(BEST))]


def quoted(question: str):
    """A stand-in for the extractive answer: the given passage quoted."""
    from rag.schema import Answer

    return lambda: Answer(None, question, f"Laut dem Artikel: {BEST} [1]", False, [GIVEN[0].citation(1)], [])


def generate(chat_server, question: str) -> list:
    return list(generator_for(chat_server).stream(question, [hit()], GIVEN, quoted(question)))


def test_grounded_answer_streams_then_cites_the_passages_it_names(chat_server):
    chat_server.reply = "Meta zahlt 14.3 Mrd. Dollar für Scale AI [1]."
    out = generate(chat_server, "Wie viel zahlt Meta für Scale AI?")
    answer = out[-1]
    assert "".join(out[:-1]) == chat_server.reply
    assert answer.answer == chat_server.reply and not answer.abstained and answer.grounding["passed"]
    assert [c.n for c in answer.citations] == [1] and check_quotes(answer.citations, {"001_x": ARTICLE}) == []


def test_unbacked_figure_or_foreign_marker_falls_back_and_says_why(chat_server):
    chat_server.reply = "Meta zahlt 18 Milliarden Dollar [1] und mehr [4]."
    answer = generate(chat_server, "Wie viel zahlt Meta für Scale AI?")[-1]
    assert "„18“" in answer.fallback_reason and "[4]" in answer.fallback_reason
    assert "14,3 Milliarden" in answer.answer and answer.citations[0].quote in ARTICLE  # the fallback's answer
    assert not answer.grounding["passed"]


def test_refusal_abstains_with_nearest_sources(chat_server):
    chat_server.reply = "Dazu enthält der Kontext keine Angabe."
    answer = generate(chat_server, "Wie viele Mitarbeiter hat Meta?")[-1]
    assert answer.abstained and answer.answer.startswith(REFUSAL) and "Nächstliegende Quellen: [1]" in answer.answer


# --- the answerer on the real seeds index ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def seeds_retriever(real_seeds_index):
    settings, embedder, index = real_seeds_index
    retriever = Retriever(index, embedder, settings)
    retriever.warm_up()
    return settings, retriever


def test_server_answerer_checks_and_falls_back_to_the_extractive_answer(seeds_retriever, chat_server):
    settings, retriever = seeds_retriever
    answerer = GenerativeAnswerer(retriever, settings.model_copy(update={"answerer": "server", "llm_url": chat_server.url}))
    question = "Wie viel zahlt Meta für Scale AI?"
    chat_server.reply = "Meta zahlt 14,3 Milliarden Dollar für Scale AI [1]."
    good = answerer.run(question)
    assert good.answerer == "server" and good.answer == chat_server.reply and good.grounding["passed"]
    assert "14,3 Milliarden" in good.citations[0].quote
    prompt = chat_server.requests[-1]["messages"][-1]["content"]
    assert prompt.count("\n[") >= 3 and "14,3 Milliarden" in prompt  # 4–5 short passages, the answer among them
    chat_server.reply = "Meta zahlt 18 Milliarden Dollar für Scale AI [1]."
    bad = answerer.run(question)
    assert bad.answerer == "extractive" and "14,3" in bad.answer and "„18“" in bad.fallback_reason
    texts = {d: a.text for d, a in retriever.index.articles.items()}
    assert check_quotes(good.citations, texts) == [] and check_quotes(bad.citations, texts) == []
    # A real figure, but of another passage: backed by what it cites, yet not the best evidence.
    other = next(line for line in prompt.splitlines()[1:] if line.startswith("[") and "14,3" not in line
                 and any(f.scale for f in figures(line)))
    figure = next(f for f in figures(other) if f.scale)
    chat_server.reply = f"Meta zahlt {figure.text} Milliarden Dollar [{other[1]}]." if figure.scale == 1e9 else \
        f"Meta zahlt {figure.text} Millionen Dollar [{other[1]}]."
    swapped = answerer.run(question)
    assert swapped.answerer == "extractive" and "lässt 14,3" in swapped.fallback_reason


def test_unanswerable_question_is_declined_without_asking_the_model(seeds_retriever, chat_server):
    settings, retriever = seeds_retriever
    answerer = GenerativeAnswerer(retriever, settings.model_copy(update={"answerer": "server", "llm_url": chat_server.url}))
    answer = answerer.run("Wie viele Flugzeuge baute Airbus 2024 in Toulouse?")
    assert answer.abstained and chat_server.requests == []


def test_server_down_is_a_note_not_a_traceback(seeds_retriever, free_port):
    settings, retriever = seeds_retriever
    url = f"http://127.0.0.1:{free_port}/v1"
    answer = GenerativeAnswerer(retriever, settings.model_copy(update={"answerer": "server", "llm_url": url})).run("Wie viel zahlt Meta für Scale AI?")
    assert "14,3" in answer.answer and "not reachable" in answer.fallback_reason
    shown = subprocess.run([RAG, "ask", "Wie viel zahlt Meta für Scale AI?", "--index-dir", str(settings.index_dir),
                            "--answerer", "server", "--llm-url", url], capture_output=True, text=True, timeout=120,
                           env={**os.environ})
    assert shown.returncode == 0 and "Traceback" not in shown.stderr
    assert "not reachable" in shown.stderr and "14,3 Milliarden" in shown.stdout and "Quellen:" in shown.stdout


def test_rag_ask_streams_a_server_answer(seeds_retriever, chat_server):
    settings, _ = seeds_retriever
    chat_server.reply = "Meta zahlt 14,3 Milliarden Dollar für Scale AI [1]."
    shown = subprocess.run([RAG, "ask", "Wie viel zahlt Meta für Scale AI?", "--index-dir", str(settings.index_dir),
                            "--answerer", "server", "--llm-url", chat_server.url], capture_output=True, text=True,
                           timeout=120, env={**os.environ})
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(chat_server.reply) and "Quellen:\n[1] " in shown.stdout


# --- the local model file ---------------------------------------------------------------------------------------


def test_model_assembly_verifies_and_is_done_once(tmp_path, monkeypatch):
    parts = [bytes([n]) * (100 + n) for n in range(1, generation.MODEL_PARTS + 1)]
    folder = tmp_path / "parts"
    folder.mkdir()
    for n, data in enumerate(parts, start=1):
        (folder / f"part{n:02d}.bin").write_bytes(data)
    whole = b"".join(parts)
    monkeypatch.setattr(generation, "_part_path", lambda n: folder / f"part{n:02d}.bin")
    monkeypatch.setattr(generation, "local_available", lambda settings=None: True)
    monkeypatch.setattr(generation, "MODEL_BYTES", len(whole))
    monkeypatch.setattr(generation, "MODEL_SHA256", hashlib.sha256(whole).hexdigest())
    path = assemble_model(tmp_path / "cache")
    assert path.read_bytes() == whole and path.with_name(path.name + ".verified").exists()
    (folder / "part01.bin").unlink()  # a second call must not need the parts again
    assert assemble_model(tmp_path / "cache") == path
    monkeypatch.setattr(generation, "MODEL_SHA256", "0" * 64)
    with pytest.raises(RagError, match="corrupt"):
        path.unlink()
        (folder / "part01.bin").write_bytes(parts[0])
        assemble_model(tmp_path / "cache")
    assert not path.exists() and not list(path.parent.glob(".*.part"))


# --- the real local model (pytest -m llm) ------------------------------------------------------------------------


@pytest.mark.llm
def test_local_model_answers_with_checked_citations(seeds_retriever):

    settings, retriever = seeds_retriever
    answerer = GenerativeAnswerer(retriever, settings.model_copy(update={"answerer": "llm"}))
    answerer.warm_up()
    pieces = list(answerer.stream("Wie viel zahlt Meta für Scale AI?"))
    answer = pieces[-1]
    assert len(pieces) > 2 and answer.grounding is not None
    assert "14,3" in answer.answer and answer.citations


def test_open_questions_get_the_quotes_and_a_refusal_does_not_hide_them(seeds_retriever, chat_server):
    settings, retriever = seeds_retriever
    answerer = GenerativeAnswerer(retriever, settings.model_copy(update={"answerer": "server", "llm_url": chat_server.url}))
    open_question = answerer.run("Welche Rolle spielen die Ray-Ban-Brillen für Metas KI-Pläne?")
    assert chat_server.requests == [] and open_question.answerer == "extractive" and not open_question.abstained
    assert "Offene Frage" in open_question.fallback_reason
    chat_server.reply = "Dazu enthalten die Artikel keine Angabe."
    refused = answerer.run("Wie viel zahlt Meta für Scale AI?")
    assert len(chat_server.requests) == 1 and not refused.abstained and "14,3" in refused.answer
    assert "keine Antwort" in refused.fallback_reason
