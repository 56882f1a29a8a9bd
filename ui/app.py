"""The Gradio 6 chat app: wiring only. Every callback calls ``ui.chat.ChatEngine`` and shows what it returns.

Run it with ``rag chat [--host 127.0.0.1] [--port 7860] [--index-dir PATH]``.

Per browser session: the chat history (``gr.Chatbot``) and the earlier standalone questions (``gr.State``)
live in that session only; the engine is shared and holds no per-user state.

API for scripts (``gradio_client``): ``/answer`` (question → answer object), ``/chat`` (the chat as the
browser uses it) and ``/upload`` (files → messages).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from ui.chat import ANSWERERS, EXAMPLES, ChatEngine, Options, friendly  # noqa: E402
from rag.errors import RagError  # noqa: E402
from ui.render import error_html, input_note_html, loading_html, upload_result_html, user_html  # noqa: E402
from rag.ingest.uploads import MAX_UPLOAD_BYTES  # noqa: E402

HERE = Path(__file__).resolve().parent
CSS = (HERE / "style.css").read_text(encoding="utf-8")
HEAD = f"<style>{(HERE / 'page.css').read_text(encoding='utf-8')}</style>" + "".join(
    f"<script>{(HERE / name).read_text(encoding='utf-8')}</script>" for name in ("page.js", "cite.js"))
# Gradio's own labels ("Datei hier ablegen", "Hochladen", errors) in German whatever the browser's language: Gradio
# picks its strings by the browser's language, so its German strings (from Gradio's de translation, for the
# components this app shows) are registered under every language Gradio knows.
GRADIO_GERMAN = json.loads((HERE / "gradio_de.json").read_text(encoding="utf-8"))
GRADIO_LANGUAGES = ("ar", "ca", "ckb", "de", "en", "es", "et", "eu", "fa", "fi", "fr", "he", "hi", "id", "ja", "ko",
                    "lt", "nb", "nl", "pl", "pt", "pt-BR", "ro", "ru", "sv", "ta", "th", "tr", "uk", "ur", "uz",
                    "zh-CN", "zh-TW")
UPLOAD_FAILED = "Die Dateien konnten wegen eines internen Fehlers nicht hinzugefügt werden; die Artikel bleiben wie bisher."
PLACEHOLDER = ("<div class='rag-placeholder'><b>Fragen Sie die Nachrichtenartikel.</b><br>"
               "Jede Antwort zitiert die Sätze, auf denen sie beruht – mit Artikel, Datum und Fundstelle.</div>")


def _size(n: int) -> str:
    return f"{n / 1e6:g} MB".replace(".", ",") if n >= 1e6 else f"{n / 1e3:g} KB".replace(".", ",")


def theme() -> gr.themes.Base:
    """System fonts only: the app must not ask the internet for web fonts."""
    return gr.themes.Soft(primary_hue="blue", neutral_hue="slate",
                          font=["Inter", "system-ui", "Segoe UI", "Helvetica", "Arial", "sans-serif"],
                          font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"])


def build(engine: ChatEngine) -> gr.Blocks:
    """The Blocks app around one engine (which may still be loading in another thread)."""
    limit = engine.settings.max_question_chars

    def refresh():
        """The header: the build's progress while loading (a timer asks again every second), then what is loaded."""
        loading = engine.loading()
        if loading is not None:
            return loading.html(), gr.update(), gr.update(), gr.Timer(active=True)
        try:
            status = engine.status()
        except RagError as err:
            return error_html(friendly(err)), "", gr.update(), gr.Timer(active=False)
        if status.llm_available:
            return status.html(), engine.articles_html(), gr.update(), gr.Timer(active=False)
        choices = [(label, key) for key, label in ANSWERERS.items() if key != "llm"]
        value = "extractive" if engine.settings.answerer == "llm" else engine.settings.answerer
        return status.html(), engine.articles_html(), gr.update(
            choices=choices, value=value, info="Das lokale Sprachmodell ist hier nicht installiert."), \
            gr.Timer(active=False)

    def respond(question, history, previous, answerer, passages, show_uncited, server_url, since="", until=""):
        """The user's bubble at once (even while the index is still being built), then the answer as it comes.
        A question the engine refuses (too long) stays in the box with the reason right under it."""
        history = list(history or [])
        previous = list(previous or [])
        if not (question or "").strip():  # Enter in an empty box: nothing to ask
            yield history, "", previous, input_note_html(limit)
            return
        try:
            engine.check_question(question)
        except RagError as err:
            yield history, question, previous, input_note_html(limit, str(err))
            return
        history.append({"role": "user", "content": user_html(question or "")})
        history.append({"role": "assistant", "content": ""})
        yield history, "", previous, input_note_html(limit)
        options = Options(answerer or "extractive", int(passages or 5), bool(show_uncited), server_url or "",
                          since or "", until or "")
        update = None
        for update in engine.chat(question or "", previous, options):
            history[-1] = {"role": "assistant", "content": update.html}
            yield history, "", previous, gr.update()
        if update is not None and update.done and not update.error and update.standalone:
            previous.append(update.standalone)
        yield history, "", previous, gr.update()

    def answer_api(question: str) -> dict:
        """One question (a standalone question) → the answer object of INTERFACES.md."""
        try:
            return engine.answer(question).to_dict()
        except RagError as err:  # one line in the server log, no traceback: the request was bad, not the app
            logging.getLogger("ui.chat").warning("/answer refused: %s", err)
            raise gr.Error(str(err), print_exception=False) from None

    def upload(files):
        paths = [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in (files or [])]
        if not paths:
            yield "", gr.update(), gr.update(), None
            return
        yield (f"<div class='rag-status'><span class='rag-spinner'></span>{len(paths)} Datei(en) werden "
               f"indexiert …</div>", gr.update(), gr.update(), gr.update())
        try:
            result = engine.uploads.submit(paths)  # indexed in the background queue, smallest file first
            while not result.finished(timeout=1.0):  # each file's state until all are in; questions go on meanwhile
                yield upload_result_html(result.messages(), result.percent()), gr.update(), gr.update(), gr.update()
        except RagError as err:
            yield error_html(friendly(err)), gr.update(), gr.update(), None
            return
        except Exception:  # logged with its traceback on the server; the browser gets one sentence
            logging.getLogger("ui.chat").exception("upload failed")
            yield error_html(UPLOAD_FAILED), gr.update(), gr.update(), None
            return
        yield upload_result_html(result.messages()), engine.status().html(), engine.articles_html(), None

    def clear():
        return [], [], ""

    with gr.Blocks(title="Nachrichten-Fragen", fill_height=False, analytics_enabled=False) as demo:
        previous = gr.State([])
        timer = gr.Timer(1.0, active=True)
        with gr.Row(elem_id="rag-header"):
            gr.HTML("<div class='rag-brand'><h1>Nachrichten-Fragen</h1>"
                    "<p>Antworten aus den geladenen Artikeln – jede Aussage mit ihrer Quelle.</p></div>")
            status = gr.HTML(loading_html(0, "Artikel werden geladen …"), elem_id="rag-status")
        with gr.Row(equal_height=False):
            with gr.Column(scale=7, min_width=420):
                chatbot = gr.Chatbot(
                    # HTML built (and escaped) by ui.render: no Markdown, no LaTeX; Gradio still sanitises it
                    elem_id="rag-chat", label="Gespräch", show_label=False, height="calc(100vh - 340px)",
                    min_height=420, autoscroll=False, render_markdown=False, latex_delimiters=[], sanitize_html=True,
                    layout="panel", placeholder=PLACEHOLDER, buttons=[], feedback_options=None,
                    group_consecutive_messages=False,
                )
                with gr.Row(elem_id="rag-ask"):
                    question = gr.Textbox(elem_id="rag-question", show_label=False, scale=8, lines=1, max_lines=4,
                                          placeholder="Ihre Frage, z. B. „Wie viel investiert Meta 2026?“",
                                          autofocus=True, submit_btn=False, max_length=limit, min_width=160)
                    send = gr.Button("Fragen", variant="primary", scale=1, min_width=76, elem_id="rag-send")
                input_note = gr.HTML(input_note_html(limit), elem_id="rag-input-note", padding=False)
                with gr.Row(elem_id="rag-examples"):
                    gr.HTML("<span class='rag-examples-label'>Beispiele:</span>", elem_id="rag-examples-label")
                    examples = [gr.Button(q, size="sm", variant="secondary", elem_classes="rag-example") for q in EXAMPLES]
                    new_chat = gr.Button("Neues Gespräch", size="sm", variant="secondary", elem_id="rag-new")
            with gr.Column(scale=3, min_width=280, elem_id="rag-side"):
                with gr.Accordion("Einstellungen", open=False, elem_id="rag-settings"):
                    answerer = gr.Radio([(label, key) for key, label in ANSWERERS.items()],
                                        value=engine.settings.answerer, label="Antwort", elem_id="rag-answerer")
                    server_url = gr.Textbox(label="Server-URL", placeholder="http://127.0.0.1:8080/v1",
                                            value=engine.settings.llm_url or "", visible=engine.settings.answerer == "server",
                                            elem_id="rag-server-url")
                    passages = gr.Slider(1, 10, value=engine.settings.answer_passages, step=1,
                                         label="Passagen für die Antwort", elem_id="rag-passages")
                    show_uncited = gr.Checkbox(False, label="Gefundene, nicht zitierte Passagen zeigen",
                                               elem_id="rag-uncited")
                    with gr.Row(elem_id="rag-dates"):
                        # value="": API callers that pass only the earlier inputs keep working (gradio_client
                        # treats an input without a default value as required)
                        since = gr.Textbox("", label="Artikel ab", placeholder="JJJJ-MM-TT", max_length=10,
                                           min_width=100, elem_id="rag-since")
                        until = gr.Textbox("", label="Artikel bis", placeholder="JJJJ-MM-TT", max_length=10,
                                           min_width=100, elem_id="rag-until")
                with gr.Accordion("Artikel hinzufügen", open=False, elem_id="rag-upload-box"):
                    gr.HTML(f"<div class='rag-hint'>.txt oder .md, UTF-8, höchstens {_size(MAX_UPLOAD_BYTES)} je "
                            f"Datei. Neue Artikel sind gleich danach durchsuchbar.</div>")
                    files = gr.File(file_count="multiple", file_types=[".txt", ".md"], label="Dateien",
                                    elem_id="rag-files", height=130)
                    upload_result = gr.HTML("", elem_id="rag-upload-result")
                with gr.Accordion("Geladene Artikel", open=False, elem_id="rag-articles-box"):
                    article_list = gr.HTML("", elem_id="rag-articles")

        inputs = [question, chatbot, previous, answerer, passages, show_uncited, server_url, since, until]
        outputs = [chatbot, question, previous, input_note]
        question.submit(respond, inputs, outputs, api_name="chat", show_progress="hidden")
        send.click(respond, inputs, outputs, api_visibility="private", show_progress="hidden")
        for button, text in zip(examples, EXAMPLES):
            button.click(lambda t=text: t, None, question, queue=False, api_visibility="private").then(
                respond, inputs, outputs, api_visibility="private", show_progress="hidden")
        new_chat.click(clear, None, [chatbot, previous, question], queue=False, api_visibility="private")
        chatbot.clear(lambda: [], None, previous, queue=False, api_visibility="private")
        answerer.change(lambda a: gr.update(visible=a == "server"), answerer, server_url, queue=False,
                        api_visibility="private")
        files.upload(upload, files, [upload_result, status, article_list, files], api_name="upload",
                     show_progress="hidden")
        header = [status, article_list, answerer, timer]
        demo.load(refresh, None, header, api_visibility="private", show_progress="hidden")
        timer.tick(refresh, None, header, api_visibility="private", show_progress="hidden", queue=False)
        gr.api(answer_api, api_name="answer")
    return demo


def launch(engine: ChatEngine, host: str = "127.0.0.1", port: int = 7860, block: bool = True):
    """Start the server (the engine may still be loading; questions wait for it)."""
    demo = build(engine)
    demo.queue(default_concurrency_limit=8, max_size=64)
    demo.launch(server_name=host, server_port=port, prevent_thread_lock=not block, show_error=False, quiet=True,
                ssr_mode=False, theme=theme(), css=CSS, head=HEAD, max_file_size=f"{2 * MAX_UPLOAD_BYTES // 1000}kb",
                footer_links=["api"], enable_monitoring=False, run_history=False,
                i18n=gr.I18n(**{language: GRADIO_GERMAN for language in GRADIO_LANGUAGES}))
    return demo
