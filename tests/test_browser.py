"""The chat in a real browser: Debian's chromium driven by Playwright against the real `rag chat` server.

Needs `/usr/bin/chromium` (apt-get install -y chromium chromium-driver) and the `playwright` package; skips with
the reason otherwise. Saves docs/screenshot.png (the README's screenshot).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "screenshot.png"

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing: install it with `apt-get install -y chromium chromium-driver`",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser test needs the 'playwright' package")
pytest.importorskip("gradio", reason="the chat app needs the 'chat' extra (gradio)")

import chat_app  # noqa: E402

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-dev-shm-usage"]
QUESTION = "#rag-question textarea"
EVIL = ("Testartikel Sicherheit\n02.02.2026\n"
        "Der Hersteller Kobaltwerk meldet 2026 einen Umsatz von 7,7 Milliarden Euro. "
        "<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\"> "
        "[Hier klicken](http://evil.example) steht wörtlich im Artikel.")


@pytest.fixture(scope="module")
def app(real_seeds_index, tmp_path_factory):
    return chat_app.shared(real_seeds_index, tmp_path_factory)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, app):
    context = browser.new_context(viewport={"width": 1360, "height": 980}, locale="de-DE")
    page = context.new_page()
    outside = []
    page.on("request", lambda request: outside.append(request.url)
            if not request.url.startswith(("http://127.0.0.1", "data:", "blob:")) else None)
    page.goto(app.url)
    page.wait_for_selector(".rag-loaded b", timeout=30_000)  # the status line: what is loaded
    yield page
    context.close()
    assert outside == [], f"the page asked the internet for {outside}"  # offline: no web fonts, no CDNs


FINISHED = "#rag-chat .rag-answer:not(.rag-pending)"


def ask(page, question: str) -> float:
    """Type a question, press Enter, return seconds until the finished answer (with its source cards) is visible."""
    before = page.locator(FINISHED).count()
    page.fill(QUESTION, question)
    started = time.perf_counter()
    page.press(QUESTION, "Enter")
    page.wait_for_function(f"document.querySelectorAll('{FINISHED}').length > {before}", timeout=30_000)
    return time.perf_counter() - started


def test_question_answer_sources_followup_and_screenshot(page):
    assert "Artikel" in page.inner_text("#rag-status") and "Stand:" in page.inner_text("#rag-status")
    seconds = ask(page, "Wie viel investiert Meta 2026?")
    print(f"\nanswer with source card visible {seconds:.2f} s after Enter")
    assert seconds < 5  # target ≤ 1 s; generous here because CI shares two cores with the test runner
    answer = page.locator("#rag-chat .rag-text").last
    assert "115" in answer.inner_text() and "135" in answer.inner_text()
    card = page.locator("#rag-chat .rag-card").first
    assert card.locator("mark").count() == 1 and "Relevanz" in card.inner_text()

    marker = page.locator("#rag-chat a.rag-cite").first
    assert marker.inner_text() == "[1]"
    marker.click()
    page.wait_for_selector("#rag-chat .rag-card.rag-flash", timeout=5_000)
    assert page.url.rstrip("/") == page.url.split("#")[0].rstrip("/")  # no navigation, no new tab

    ask(page, "Und 2025?")
    rewrite = page.locator("#rag-chat .rag-rewrite").last.inner_text()
    assert "Wie viel investiert Meta 2025?" in rewrite
    assert page.locator("#rag-chat .rag-question").count() == 2
    # the README's screenshot: both questions from the top of the chat, on a taller window
    page.set_viewport_size({"width": 1360, "height": 1240})
    page.evaluate("""() => {
        const first = document.querySelector('#rag-chat .rag-question').closest('.message-row');
        let box = first.parentElement;
        while (box && !(getComputedStyle(box).overflowY.match(/auto|scroll/) && box.scrollHeight > box.clientHeight)) {
            box = box.parentElement;
        }
        if (box) box.scrollTop = 0;
    }""")
    page.wait_for_timeout(1800)  # let the marker's flash fade
    SCREENSHOT.parent.mkdir(exist_ok=True)
    tmp = SCREENSHOT.with_suffix(".tmp.png")
    page.screenshot(path=str(tmp))
    shutil.move(tmp, SCREENSHOT)


def test_example_chip_asks_and_new_chat_clears(page):
    page.click(".rag-example >> text=How much does Meta plan to invest in 2026?")
    page.wait_for_selector("#rag-chat .rag-card", timeout=30_000)
    assert "115" in page.locator("#rag-chat .rag-text").last.inner_text()
    page.click("#rag-new")
    page.wait_for_function("document.querySelectorAll('#rag-chat .rag-question').length === 0", timeout=10_000)
    ask(page, "Und 2025?")  # the history went with the chat: nothing to rewrite against
    assert page.locator("#rag-chat .rag-rewrite").count() == 0


def test_uploaded_article_with_script_renders_as_text(page, tmp_path):
    evil = tmp_path / "kobaltwerk.md"
    evil.write_text(EVIL, encoding="utf-8")
    page.click("#rag-upload-box button >> nth=0")  # open the accordion
    page.set_input_files("#rag-files input[type=file]", str(evil))
    # the result shows each step ("wird indexiert …") until the file is in the index
    page.wait_for_function("(document.querySelector('#rag-upload-result')?.innerText ?? '')"
                           ".includes('kobaltwerk.md hinzugefügt')", timeout=120_000)

    ask(page, "Wie hoch ist der Umsatz von Kobaltwerk 2026?")
    card = page.locator("#rag-chat .rag-card").first
    text = card.inner_text()
    assert "<script>window.__pwned = 1</script>" in text and "[Hier klicken](http://evil.example)" in text
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#rag-chat a[href^='http://evil']").count() == 0
    assert page.locator("#rag-chat img[src='x']").count() == 0
