"""The chat app: its engine in-process, then the real `rag chat` server through `gradio_client`.

The server tests share one `rag chat` process on a free loopback port (tests/chat_app.py), built on a copy of the
session's real seeds index (default embedder, FAISS, BM25).
"""

from __future__ import annotations

import html
import re
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("gradio", reason="the chat app needs the 'chat' extra (gradio)")
gradio_client = pytest.importorskip("gradio_client", reason="the app tests need gradio_client")

import chat_app  # noqa: E402
from ui.chat import INTERNAL_ERROR, ChatEngine, Options  # noqa: E402
from rag.retrieve.retrieval import Retriever  # noqa: E402

META_2026 = "Wie viel investiert Meta 2026?"


def says_115_to_135(text: str) -> bool:
    return bool(re.search(r"115\D{1,12}135 (Milliarden|Mrd)", text))


def cites_meta_2026(answer: dict) -> bool:
    return any(c["doc_id"].startswith(("002_", "004_")) and says_115_to_135(c["quote"]) for c in answer["citations"])


# ---- the engine, in-process ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def engine(real_seeds_index):
    settings, embedder, index = real_seeds_index
    engine = ChatEngine(settings)
    engine.install(Retriever(index, embedder, settings))
    return engine


def test_start_adds_uploads_missing_from_the_index(real_seeds_index, tmp_path):
    """After a plain `rag index` (seeds only), `rag chat` puts the saved uploads back into the index."""
    import shutil

    settings = real_seeds_index[0].model_copy(update={"index_dir": tmp_path / "seeds"})
    shutil.copytree(real_seeds_index[0].index_dir, settings.index_dir)
    uploads = tmp_path / "seeds-uploads"
    uploads.mkdir()
    (uploads / "nordlicht.txt").write_text(NEWS, encoding="utf-8")
    messages = []
    engine = ChatEngine(settings, say=messages.append).load()
    assert "nordlicht" in engine.index.articles and engine.uploaded_ids() == ["nordlicht"]
    assert engine.status().uploads == 1 and any("uploaded" in m for m in messages)
    assert "3,4 Milliarden Euro" in engine.answer("Wie viel investiert Nordlicht Energie 2026?").answer


def test_status_says_what_is_loaded(engine):
    status = engine.status()
    assert status.articles == 5 and status.passages > 20 and status.embedder == engine.retriever.embedder.model_id
    assert "5</b> Artikel" in status.html() and "Extraktiv" in status.html()
    assert engine.articles_html().count("<li>") == 5


def test_chat_streams_a_status_then_the_cited_answer(engine):
    updates = list(engine.chat(META_2026))
    assert "Suche in den Artikeln" in updates[0].html and updates[0].answer is None
    last = updates[-1]
    assert last.done and not last.error and last.standalone == META_2026
    assert says_115_to_135(last.answer.answer)
    assert 'class="rag-cite"' in last.html and 'class="rag-card"' in last.html and "<mark>" in last.html


def test_followup_is_rewritten_and_the_rewrite_shown(engine):
    last = list(engine.chat("Und 2025?", [META_2026]))[-1]
    assert last.standalone == "Wie viel investiert Meta 2025?"
    assert "Verstanden als" in last.html and "Wie viel investiert Meta 2025?" in last.html
    assert "72 Milliarden" in last.answer.answer


def test_a_relative_year_is_answered_and_shown_as_the_year_it_was_read_as(real_seeds_index):
    settings, embedder, index = real_seeds_index
    local = settings.model_copy(update={"today": "2026-12-02"})
    dated = ChatEngine(local)
    dated.install(Retriever(index, embedder, local))
    last = list(dated.chat("Wie viel investiert Meta dieses Jahr?"))[-1]
    assert "Verstanden als: <q>Wie viel investiert Meta 2026?</q>" in last.html and "heutige Datum" in last.html
    assert says_115_to_135(last.answer.answer) and last.standalone == "Wie viel investiert Meta dieses Jahr?"


def test_sessions_do_not_share_history(engine):
    """The engine keeps no history: a question without previous questions is answered as it stands."""
    list(engine.chat("Wie viel investiert Meta 2026?", []))
    last = list(engine.chat("Und 2025?", []))[-1]
    assert last.standalone == "Und 2025?" and "Verstanden als" not in last.html


def test_uncited_passages_on_request(engine):
    last = list(engine.chat(META_2026, [], Options(show_uncited=True, passages=3)))[-1]
    assert "nicht zitierte Passagen" in last.html


@pytest.mark.parametrize("question, message", [
    ("", "Bitte eine Frage eingeben."),
    ("   \n ", "Bitte eine Frage eingeben."),
    ("Wie? " * 1000, "Die Frage ist zu lang"),
])
def test_bad_questions_get_a_friendly_message(engine, question, message):
    (update,) = list(engine.chat(question))
    assert update.error and message in update.html and "Traceback" not in update.html


def test_internal_errors_show_no_internals(engine, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("secret path /etc/passwd")

    monkeypatch.setattr(engine, "extractive", broken)
    last = list(engine.chat(META_2026))[-1]
    assert last.error and html.escape(INTERNAL_ERROR, quote=True) in last.html or INTERNAL_ERROR in html.unescape(last.html)
    assert "secret" not in last.html and "Traceback" not in last.html


class FakeGenerator:
    """Streams a fixed German answer word by word, then an answer object citing the first passage's first sentence."""

    def __init__(self, settings):
        self.settings = settings
        self.questions = []

    def warm_up(self):
        pass

    def stream(self, question, hits, passages=None, fallback=None, id=None, agree=None):
        from rag.schema import Answer, Citation

        self.questions.append(question)
        self.passages = passages
        text = "Meta will 2026 zwischen 115 und 135 Milliarden Dollar investieren [1]."
        for word in text.split(" "):
            yield word + " "
        hit = hits[0]
        quote = hit.text.split(". ")[0]
        yield Answer(None, question, text, False,
                     [Citation(1, hit.doc_id, hit.title, hit.date, quote, hit.start, hit.start + len(quote), 0.9)], [])

    def complete(self, messages):
        return "Wer ist Finanzchefin bei Meta?"


@pytest.fixture
def model_engine(real_seeds_index):
    settings, embedder, index = real_seeds_index
    made = []
    engine = ChatEngine(settings, generators=lambda s, log: made.append(FakeGenerator(s)) or made[-1])
    engine.install(Retriever(index, embedder, settings))
    engine.made = made
    return engine


def test_model_answer_replaces_the_extractive_one_as_it_streams(model_engine):
    updates = list(model_engine.chat(META_2026, [], Options(answerer="llm")))
    first_answer = next(u for u in updates if u.answer is not None)
    assert 'class="rag-card"' in first_answer.html and "Sprachmodell formuliert" in first_answer.html
    streamed = [u.html for u in updates if "Sprachmodell schreibt" in u.html]
    assert len(streamed) >= 5 and "Meta" in streamed[0] and "Milliarden" not in streamed[0] and "Meta will" in streamed[2]
    last = updates[-1]
    assert last.done and last.answer.answer.startswith("Meta will 2026") and 'class="rag-card"' in last.html
    assert "rag-status" not in last.html
    given = model_engine.made[0].passages  # the extractive answerer's sentences, the answer first
    assert given and "115" in given[0].text and len(given) <= model_engine.settings.llm_passages
    assert "zuerst geladen" in first_answer.html  # the local model's first load is announced, later answers not
    again = list(model_engine.chat(META_2026, [], Options(answerer="llm")))
    assert not any("zuerst geladen" in u.html for u in again)


def test_model_rewrites_followups_and_one_generator_per_choice(model_engine):
    options = Options(answerer="server", server_url="http://127.0.0.1:9/v1")
    last = list(model_engine.chat("Wer ist dort Finanzchefin?", [META_2026], options))[-1]
    assert last.standalone == "Wer ist Finanzchefin bei Meta?" and "Verstanden als" in last.html
    list(model_engine.chat(META_2026, [], options))
    assert len(model_engine.made) == 1 and model_engine.made[0].settings.llm_url == "http://127.0.0.1:9/v1"


def test_a_model_refusal_does_not_replace_a_found_answer(model_engine, monkeypatch):
    from rag.schema import Answer

    def refusing(self, question, hits, passages=None, fallback=None, id=None, agree=None):
        yield "Dazu enthalten die Artikel keine Angabe."
        yield Answer(None, question, "Dazu enthalten die Artikel keine Angabe.", True, [], [])

    monkeypatch.setattr(FakeGenerator, "stream", refusing)
    last = list(model_engine.chat(META_2026, [], Options(answerer="llm")))[-1]
    assert says_115_to_135(last.answer.answer) and "fand in seinen Textstellen keine Antwort" in last.html


@pytest.mark.llm
def test_the_local_model_streams_after_the_extractive_answer(engine):
    """The real bundled model (extra `llm`, ~30 s on 2 cores): `python -m pytest -m llm tests/test_ui.py`."""
    if not engine.models.available():
        pytest.skip("the local model's packages are not installed")
    started, first, steps = time.perf_counter(), None, []
    for update in engine.chat(META_2026, [], Options(answerer="llm")):
        if update.answer is not None and first is None:
            first = time.perf_counter() - started
        steps.append(update)
    assert first is not None and first < 2 and steps[-1].done and not steps[-1].error
    assert says_115_to_135(steps[-1].answer.answer)


def test_server_urls_from_the_browser_are_checked_and_get_no_api_key(model_engine):
    list(model_engine.chat(META_2026, [], Options(answerer="server", server_url="http://127.0.0.1:9/v1")))
    assert model_engine.made[-1].settings.llm_api_key_env == "RAG_CHAT_NO_API_KEY"
    last = list(model_engine.chat(META_2026, [], Options(answerer="server", server_url="file:///etc/passwd")))[-1]
    assert "http://" in html.unescape(last.html) and says_115_to_135(last.answer.answer)
    model_engine.models.allow_server_urls = False
    last = list(model_engine.chat(META_2026, [], Options(answerer="server", server_url="http://10.0.0.1/v1")))[-1]
    assert "RAG_LLM_URL" in html.unescape(last.html) and len(model_engine.made) == 1


def test_server_answerer_needs_a_url(model_engine):
    last = list(model_engine.chat(META_2026, [], Options(answerer="server", server_url="")))[-1]
    assert "URL des Sprachmodell-Servers" in html.unescape(last.html) and says_115_to_135(last.answer.answer)


def test_model_answerer_unavailable_keeps_the_extractive_answer(engine):
    last = list(engine.chat(META_2026, [], Options(answerer="server", server_url="http://127.0.0.1:9")))[-1]
    assert last.done and says_115_to_135(last.answer.answer)
    assert "rag-card" in last.html


# ---- `rag chat` errors: one sentence, no traceback -------------------------------------------------------------

def rag_chat(*args):
    return subprocess.run([sys.executable, "-m", "rag.cli", "chat", *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def test_chat_on_a_missing_index_without_articles_says_so(tmp_path):
    """A missing index is built (from --from DIR, default seeds/); without articles to build it from: one sentence."""
    result = rag_chat("--index-dir", tmp_path / "nothing", "--from", tmp_path / "none", "--port", chat_app.free_port())
    assert result.returncode != 0 and "Traceback" not in result.stderr + result.stdout
    assert result.stderr.strip() == (f"Error: There is no index at {tmp_path / 'nothing'} and no articles folder at "
                                     f"{tmp_path / 'none'} to build it from; pass one with --from DIR.")


def test_chat_on_a_busy_port_says_so(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = rag_chat("--port", port, "--index-dir", tmp_path)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert f"Port {port} on 127.0.0.1 is in use" in result.stderr and len(result.stderr.strip().splitlines()) == 1


# ---- the real app --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def app(real_seeds_index, tmp_path_factory):
    return chat_app.shared(real_seeds_index, tmp_path_factory)


@pytest.fixture(scope="module")
def client(app):
    return gradio_client.Client(app.url, verbose=False)


def chat(client, question, history):
    """One turn through the `/chat` endpoint, as the browser sends it; returns (history, last assistant HTML)."""
    history, _, _ = client.predict(question, history, "extractive", 5, False, "", "", "", api_name="/chat")
    content = history[-1]["content"]
    text = content if isinstance(content, str) else "".join(part.get("text", "") for part in content)
    return history, text


def test_app_is_ready_quickly(app):
    assert app.ready_seconds < 30, app.log()  # target ≤ 10 s on an idle 2-core machine; CI shares its cores
    print(f"\n`rag chat` ready after {app.ready_seconds:.1f} s")


def test_answer_endpoint_returns_the_answer_object(client):
    answer = client.predict(META_2026, api_name="/answer")
    assert set(answer) >= {"id", "question", "answer", "abstained", "citations", "retrieved"}
    assert answer["question"] == META_2026 and not answer["abstained"]
    assert says_115_to_135(answer["answer"]) and cites_meta_2026(answer)
    assert len(answer["retrieved"]) >= 10


def test_answer_endpoint_rejects_an_empty_question_cleanly(client):
    with pytest.raises(Exception, match="Frage eingeben"):
        client.predict("  ", api_name="/answer")


def test_followups_through_the_chat_endpoint(client):
    history, first = chat(client, META_2026, [])
    assert says_115_to_135(html.unescape(first))
    history, second = chat(client, "Und 2025?", history)
    second = html.unescape(second)
    assert "Verstanden als: <q>Wie viel investiert Meta 2025?</q>" in second and "72 Milliarden" in second
    history, third = chat(client, "Wer ist dort Finanzchefin?", history)
    third = html.unescape(third)
    # The chat's part: the follow-up is rewritten with the conversation's subject, and answered with sources
    # (which sentence answers is the answerer's business, tested in test_answering).
    assert "Verstanden als: <q>Wer ist bei Meta Finanzchefin?</q>" in third and 'class="rag-card"' in third
    assert len(history) == 6


def test_two_clients_have_separate_histories(app):
    a, b = gradio_client.Client(app.url, verbose=False), gradio_client.Client(app.url, verbose=False)
    chat(a, META_2026, [])
    _, reply = chat(b, "Und 2025?", [])
    assert "Verstanden als" not in reply


def test_eight_concurrent_answers_are_all_correct(app):
    questions = [META_2026, "Wie viel will Meta 2026 investieren?", "How much does Meta plan to invest in 2026?",
                 "Welche Kapitalinvestitionen plant Meta für 2026?"] * 2
    clients = [gradio_client.Client(app.url, verbose=False) for _ in questions]
    started = time.perf_counter()
    with ThreadPoolExecutor(len(questions)) as pool:
        answers = list(pool.map(lambda pair: pair[0].predict(pair[1], api_name="/answer"), zip(clients, questions)))
    seconds = time.perf_counter() - started
    for question, answer in zip(questions, answers):
        assert answer["question"] == question
        assert says_115_to_135(answer["answer"]) and cites_meta_2026(answer), answer["answer"]
    print(f"\n8 concurrent /answer calls: {seconds:.2f} s")


class StubChatServer:
    """A stand-in OpenAI-compatible chat-completions server on loopback: streams an answer citing the prompt's
    passage that holds the 2026 figure, and rewrites follow-ups when asked without streaming."""

    def __init__(self):
        import http.server
        import json
        import threading

        stub = self
        self.requests = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append((self.path, body))
                prompt = body["messages"][-1]["content"]
                if not body.get("stream"):
                    payload = json.dumps({"choices": [{"message": {"content": "Wer ist Finanzchefin bei Meta?"}}]})
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(payload.encode())
                    return
                numbers = re.findall(r"^\[(\d+)\].*135", prompt, re.MULTILINE)
                text = (f"Meta plant für 2026 Kapitalinvestitionen von 115 bis 135 Milliarden US-Dollar [{numbers[0]}]."
                        if numbers else "Dazu enthalten die Artikel keine Angabe.")
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for word in text.split(" "):
                    chunk = {"choices": [{"delta": {"content": word + " "}}]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                    time.sleep(0.03)
                self.wfile.write(b"data: [DONE]\n\n")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def stub_server():
    server = StubChatServer()
    yield server
    server.close()


def test_server_answer_streams_into_the_chat_replacing_the_extractive_one(client, stub_server):
    job = client.submit(META_2026, [], "server", 5, False, stub_server.url, "", "", api_name="/chat")
    history, _, _ = job.result(timeout=60)
    steps = ["".join(part.get("text", "") for part in out[0][-1]["content"]) if not isinstance(out[0][-1]["content"], str)
             else out[0][-1]["content"] for out in job.outputs()]
    final = html.unescape(steps[-1])
    assert "Meta plant für 2026 Kapitalinvestitionen von 115 bis 135 Milliarden US-Dollar" in final
    assert 'class="rag-card"' in final and "rag-pending" not in final
    assert any("Sprachmodell formuliert" in step and "rag-card" in step for step in steps)  # extractive first
    assert any("Sprachmodell schreibt" in step for step in steps)  # then the model's words as they come
    assert stub_server.requests and stub_server.requests[-1][0] == "/v1/chat/completions"


def test_server_rewrites_the_followup(client, stub_server):
    history, _, _ = client.predict(META_2026, [], "extractive", 5, False, "", "", "", api_name="/chat")
    history, _, _ = client.predict("Wer ist dort Finanzchefin?", history, "server", 5, False, stub_server.url, "",
                                   "", api_name="/chat")
    content = history[-1]["content"]
    text = html.unescape(content if isinstance(content, str) else "".join(p.get("text", "") for p in content))
    assert "Verstanden als: <q>Wer ist Finanzchefin bei Meta?</q>" in text
    assert any(not body.get("stream") and "Folgefrage" in body["messages"][-1]["content"]
               for _, body in stub_server.requests)


NEWS = ("Nordlicht Energie baut Batteriespeicher\n28.01.2026\n"
        "Der Versorger Nordlicht Energie investiert 2026 rund 3,4 Milliarden Euro in Batteriespeicher an der Küste. "
        "Kritiker schreiben <script>alert('x')</script> und [Jetzt klicken](http://evil.example) darunter. "
        "Finanzchef Jonas Berg nannte die Pläne ehrgeizig, aber finanzierbar.")


def test_upload_then_ask_about_the_new_article(app, client, tmp_path):
    good = tmp_path / "nordlicht.txt"
    good.write_text(NEWS, encoding="utf-8")
    bad = tmp_path / "kaputt.txt"
    bad.write_bytes("Größe".encode("latin-1"))
    result, status, articles, _ = client.predict([gradio_client.handle_file(good), gradio_client.handle_file(bad)],
                                                 api_name="/upload")
    result = html.unescape(result)
    assert "✓ nordlicht.txt hinzugefügt" in result
    assert "✗ kaputt.txt ist nicht UTF-8-kodiert" in result
    reused = int(re.search(r"(\d+) wiederverwendet", result).group(1))
    embedded = int(re.search(r"(\d+) neu eingebettet", result).group(1))
    assert reused > 20 and 1 <= embedded <= 3  # only the new article's passages were embedded
    counts = re.search(r"<b>(\d+)</b> Artikel &#40;davon (\d+) hochgeladen", status)
    assert counts and int(counts.group(1)) == 5 + int(counts.group(2)) >= 6  # the browser test may upload too
    assert "Nordlicht Energie" in articles
    assert (app.index_dir.parent / "seeds-uploads" / "nordlicht.txt").exists()

    answer = client.predict("Wie viel investiert Nordlicht Energie 2026?", api_name="/answer")
    assert "3,4 Milliarden Euro" in answer["answer"] and answer["citations"][0]["doc_id"] == "nordlicht"
    _, reply = chat(client, "Wie viel investiert Nordlicht Energie 2026?", [])
    assert "<script" not in reply and "](" not in reply and "<a href" not in reply
    assert "&lt;script&gt;alert&#40;&#39;x&#39;&#41;&lt;/script&gt;" in reply  # shown as text in the source card
    assert "&#91;Jetzt klicken&#93;&#40;http&#58;//evil.example&#41;" in reply
