"""Bad input, kills mid-write and odd questions: the tool keeps working and loses nothing."""

import json
import os
import re
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
        index = load_index(index_dir)
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


# --- issue 15: one writer at a time, uploads that never overwrite, one clear sentence at every door -------------

TINY = {
    "nordwind": "Nordwind AG meldet Rekord\n12.03.2026\nDie Nordwind AG steigerte 2025 den Umsatz auf 4,2 Milliarden Euro.",
    "suedhafen": "Südhafen baut aus\n02.02.2026\nDer Südhafen investiert 2026 rund 800 Millionen Euro in neue Kais.",
}


def run_rag(*args, env=None, cwd=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "rag.cli", *[a if isinstance(a, bytes) else str(a) for a in args]],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env=dict(os.environ, **(env or {})))


def one_sentence(result, *fragments):
    """Exit 2, no traceback, and the last line on stderr is the one error sentence that says what went wrong."""
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("Error:")]
    assert result.returncode == 2 and errors == lines[-1:] and "Traceback" not in result.stderr, result.stderr
    assert all(f in lines[-1] for f in fragments), lines[-1]
    return lines[-1]


def article_folder(root, texts):
    root.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (root / f"{name}.txt").write_text(text, encoding="utf-8")
    return root


def test_a_second_writer_waits_or_with_no_wait_exits_with_one_sentence(tmp_path):
    from rag.index.lock import writer_lock

    folder = article_folder(tmp_path / "a", TINY)
    index_dir = tmp_path / "idx"
    with writer_lock(index_dir):  # another writer holds the index
        one_sentence(run_rag("index", folder, "--index-dir", index_dir, "--no-wait"), "Ein anderer Indexlauf", str(index_dir))
        waiting = start_rag("index", folder, "--index-dir", index_dir)
        time.sleep(3)
        assert waiting.poll() is None, "the second writer waits for the first"
    assert waiting.wait(300) == 0
    assert set(load_index(index_dir).articles) == set(TINY)


def _clean_build_matches(index, folder, settings_for, fake_embedder, name):
    clean_settings = settings_for().model_copy(update={"index_dir": folder.parent / f"clean-{name}"})
    build_index(folder, clean_settings, fake_embedder)
    clean = load_index(clean_settings.index_dir)
    assert [(c.chunk_id, c.text, c.text_hash) for c in index.chunks] == \
        [(c.chunk_id, c.text, c.text_hash) for c in clean.chunks]


def test_overlapping_builds_take_turns_and_readers_never_move_the_index(tmp_path, settings_for, fake_embedder):
    """Issue 15, cases 1 and 2: three builds of different folders (same article ids, different texts) overlap on
    one index while readers load it over and over; every load succeeds and sees each passage under its own
    article, and the final index equals a clean build of the folder built last."""
    import threading

    folders = [article_folder(tmp_path / f"w{i}", {f"art{j}": f"Meta {i} meldet {j}. " * (5 + 7 * i + j)
                                                   for j in range(4)}) for i in range(3)]
    settings = settings_for()
    finished, errors, loads = [], [], [0]
    stop = threading.Event()

    def write(i):
        try:
            for _ in range(3):
                build_index(folders[i], settings, fake_embedder)
                finished.append(i)
        except Exception as err:
            errors.append(err)

    def read():
        while not stop.is_set():
            try:
                index = load_index(settings.index_dir)
            except RagError as err:
                if "There is no index" in str(err):
                    continue
                errors.append(err)
                return
            for chunk in index.chunks:
                assert chunk.text in index.articles[chunk.doc_id].text
            loads[0] += 1

    readers = [threading.Thread(target=read) for _ in range(2)]
    writers = [threading.Thread(target=write, args=(i,)) for i in range(3)]
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in readers:
        thread.join()
    assert not errors and len(finished) == 9 and loads[0] > 0
    _clean_build_matches(load_index(settings.index_dir), folders[finished[-1]], settings_for, fake_embedder, "last")


@pytest.mark.parametrize("toml, fragment", [(b"top_k = \n", "not valid TOML"), (b"top_k = 5 # K\xf6ln\n", "not UTF-8")])
def test_broken_config_files_are_one_sentence(tmp_path, toml, fragment):
    (tmp_path / "rag.toml").write_bytes(toml)
    one_sentence(run_rag("ask", "Wie viel?", cwd=tmp_path), fragment, "rag.toml")


def test_missing_rag_config_is_one_sentence(tmp_path):
    one_sentence(run_rag("ask", "Wie viel?", env={"RAG_CONFIG": str(tmp_path / "missing.toml")}), "missing.toml",
                 "RAG_CONFIG")


def test_question_that_is_not_utf8_is_one_sentence(tmp_path):
    one_sentence(run_rag("ask", b"Meta \xff\xfe", "--index-dir", tmp_path), "not valid UTF-8", "0xff")


def test_disk_full_during_index_keeps_the_old_index_and_names_the_folder(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.decode(errors='replace').strip()})")
    try:
        folder = article_folder(tmp_path / "a", TINY)
        index_dir = mount / "idx"
        assert run_rag("index", folder, "--index-dir", index_dir).returncode == 0
        before = load_index(index_dir).params["corpus"]
        free = os.statvfs(mount)
        (mount / "filler").write_bytes(b"\0" * (free.f_bavail * free.f_frsize - 64 * 1024))
        (folder / "neu.txt").write_text("Neue Meldung: Meta investiert 2026 mehr. " * 200, encoding="utf-8")
        one_sentence(run_rag("index", folder, "--index-dir", index_dir), "disk", str(mount), "previous index is unchanged")
        assert load_index(index_dir).params["corpus"] == before
        assert sorted(p.name for p in mount.iterdir() if p.name.startswith(".idx.v-")) == [os.readlink(index_dir)]
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


def test_semicolon_csv_and_duplicate_ids(tmp_path, real_seeds_index):
    settings = real_seeds_index[0]
    questions = tmp_path / "fragen.csv"
    questions.write_text("id;question\nq1;Wie viel investiert Meta 2026?\nq2;Was plant Microsoft; und wann?\n"
                         "q1;Noch einmal q1?\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = run_rag("batch", questions, "--out", out, "--index-dir", settings.index_dir, "--retrieve-only")
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["q1", "q2"]
    assert "line 4 skipped: the id 'q1' was already used on line 2" in result.stderr


def test_a_metadata_date_that_is_no_date_is_a_warning_and_unknown(tmp_path):
    folder = article_folder(tmp_path / "a", {"ohne": "Meldung ohne Datum: Meta investiert."})
    (folder / "metadata.json").write_text(json.dumps({"ohne": {"date": '2025-13-45"><script>'}}), encoding="utf-8")
    result = run_rag("index", folder, "--index-dir", tmp_path / "idx")
    assert result.returncode == 0 and "is not a date" in result.stderr and "Traceback" not in result.stderr
    assert load_index(tmp_path / "idx").articles["ohne"].date is None


LARGE = ("lang.txt", "".join(f"Meldung {i}: Meta investiert {i} Millionen. " for i in range(800)).encode())
SMALL = ("kurz.txt", TINY["nordwind"].encode())


@pytest.fixture
def slow_queue(seeds_copy, settings_for, fake_embedder):
    """An upload queue on a seeds index whose embedder takes 20 ms per text (so the large file's 800 sentences
    take tens of seconds); ``spent`` records each build's seconds by its first file's name."""
    from conftest import FakeEmbedder
    from rag.ingest.uploads import UploadQueue, uploads_dir
    from rag.pipeline import add_files

    class SlowEmbedder(FakeEmbedder):
        def embed_passages(self, texts):
            time.sleep(0.02 * len(texts))
            return super().embed_passages(texts)

    settings = settings_for()
    build_index(seeds_copy, settings, fake_embedder)
    spent = {}

    def index(files, listener):
        started = time.perf_counter()
        result = add_files(files, load_index(settings.index_dir), settings, SlowEmbedder(), listener=listener)
        spent[files[0][0]] = time.perf_counter() - started
        return result

    return UploadQueue(uploads_dir(settings.index_dir), index, str), spent, settings


def _both_indexed(queue, uploads, settings):
    assert uploads.finished(600)
    assert {"kurz", "lang"} <= set(load_index(settings.index_dir).articles)
    assert not list(queue.spool.iterdir()), "nothing left in the queue folder"


def test_small_upload_sent_with_a_large_one_goes_first(slow_queue):
    """Issue 15: sent together, the small file is indexed first, in about its own indexing time, and the large
    file's state shows the build's progress."""
    from rag.ingest.uploads import Uploads

    queue, spent, settings = slow_queue
    started = time.perf_counter()
    uploads = Uploads(queue.submit([LARGE, SMALL]))
    assert uploads.jobs[1].done.wait(300)
    assert time.perf_counter() - started <= spent["kurz.txt"] + 10
    assert not uploads.jobs[0].done.is_set(), "the large file is indexed after the small one"
    states, percents = set(), []
    while not uploads.finished(timeout=0.2):
        states.add(uploads.messages()[0])
        percents.append(uploads.percent())
    assert any(re.fullmatch(r"… lang\.txt: wird indexiert \(bettet (Passagen|Sätze) ein: \d+/\d+\)", s) for s in states), states
    moving = [p for p in percents if p is not None]
    assert len(set(moving)) >= 2 and moving == sorted(moving) and 0 <= moving[0] and moving[-1] <= 95, percents
    assert uploads.percent() is None, "no bar once every file is in"
    _both_indexed(queue, uploads, settings)


def test_small_upload_sent_later_interrupts_a_large_build(slow_queue):
    """A small file sent while a large one is being embedded does not wait for it: the large build gives way
    (nothing of it reaches the index) and runs again right after."""
    from rag.ingest.uploads import Uploads

    queue, spent, settings = slow_queue
    large = Uploads(queue.submit([LARGE]))
    while "bettet" not in large.messages()[0]:
        assert not large.finished(timeout=0.1)
    started = time.perf_counter()
    small = Uploads(queue.submit([SMALL]))
    assert small.finished(300) and time.perf_counter() - started <= spent["kurz.txt"] + 10
    assert not large.finished(timeout=0) and "lang" not in load_index(settings.index_dir).articles
    _both_indexed(queue, Uploads(large.jobs + small.jobs), settings)


# --- over HTTP, on the real `rag chat` ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def chat(real_seeds_index, tmp_path_factory):
    import chat_app

    return chat_app.shared(real_seeds_index, tmp_path_factory)


@pytest.fixture(scope="module")
def client(chat):
    gradio_client = pytest.importorskip("gradio_client")
    return gradio_client.Client(chat.url, verbose=False)


def test_colliding_upload_names_both_stay_searchable(chat, client, tmp_path, real_seeds_index):
    from gradio_client import handle_file

    first, second = tmp_path / "a" / "Bericht?.txt", tmp_path / "b" / "Bericht!.txt"
    for path, text in ((first, "Die Kobaltwerk AG verdoppelt 2026 die Produktion in Freiberg."),
                       (second, "Die Zinnhütte GmbH schließt 2026 ihr Werk in Halsbrücke.")):
        path.parent.mkdir()
        path.write_text(text, encoding="utf-8")
    for path in (first, second):
        result = client.predict([handle_file(path)], api_name="/upload")[0]
        assert "hinzugefügt" in result, result
    assert "als Bericht-2" in result
    settings, embedder, _ = real_seeds_index
    search = Retriever(load_index(chat.index_dir), embedder, settings).run
    assert search("Was macht die Kobaltwerk AG 2026?", k=1)[0].doc_id == "Bericht"
    assert search("Was macht die Zinnhütte GmbH 2026?", k=1)[0].doc_id == "Bericht-2"
    again = client.predict([handle_file(first)], api_name="/upload")[0]
    assert "derselbe Text ist schon geladen" in again


def call_answer(url: str, question, timeout: float = 60.0) -> tuple[str, object]:
    """``/answer`` over raw HTTP (Gradio's call API): ``("complete", answer)`` or ``("error", {"error": …})``.

    Raw, because a client library cannot even encode a lone surrogate, while JSON's ``"\\ud800"`` escape carries it;
    and so that a slow answer on a loaded machine is waited for, not timed out by a client default."""
    import httpx

    body = json.dumps({"data": [question]}, ensure_ascii=True)
    event = httpx.post(f"{url}gradio_api/call/answer", content=body, trust_env=False, timeout=timeout,
                       headers={"Content-Type": "application/json"}).json()["event_id"]
    stream = httpx.get(f"{url}gradio_api/call/answer/{event}", timeout=timeout, trust_env=False).text
    kind = [line[6:].strip() for line in stream.splitlines() if line.startswith("event:")][-1]
    data = json.loads([line[5:] for line in stream.splitlines() if line.startswith("data:")][-1])
    return kind, data[0] if kind == "complete" else data


@pytest.mark.parametrize("question, fragment", [(42, "muss ein Text sein"), ("Meta \ud800 2026", "ungültiges Zeichen"),
                                                ("", "Bitte eine Frage eingeben")])
def test_answer_api_refuses_bad_questions_with_one_sentence(chat, client, question, fragment):
    before = chat.log()
    kind, data = call_answer(chat.url, question)
    assert kind == "error" and fragment in data["error"], data
    time.sleep(0.5)
    new = chat.log()[len(before):]
    assert "Traceback" not in new and len(new.strip().splitlines()) <= 1, new


def test_chat_starts_and_answers_behind_a_proxy(real_seeds_index, tmp_path):
    """HTTP(S)_PROXY point at a proxy that accepts and never answers; loopback must not go through it."""
    import socket

    import chat_app
    import httpx

    with socket.socket() as proxy:
        proxy.bind(("127.0.0.1", 0))
        proxy.listen(16)
        url = f"http://127.0.0.1:{proxy.getsockname()[1]}"
        env = {"HTTP_PROXY": url, "HTTPS_PROXY": url, "http_proxy": url, "https_proxy": url, "NO_PROXY": "",
               "no_proxy": ""}
        app = chat_app.start(real_seeds_index[0].index_dir, tmp_path, timeout=180, env=env)
        try:
            page = httpx.get(app.url, trust_env=False, timeout=30)
            assert page.status_code == 200 and "Nachrichten-Fragen" in page.text and "Traceback" not in app.log()
        finally:
            app.process.terminate()
            app.process.wait(20)


@pytest.mark.slow
def test_stress_three_writers_and_sixteen_readers(real_seeds_index, tmp_path):
    """Issue 15 acceptance: for 60 s, 3 `rag index` loops (different folders, one index, the one `rag chat` was
    started on: a plain folder that becomes versioned on the first write) and 16 `/answer` callers, plus a
    thread re-loading the index from disk. Every read succeeds, the final index equals a clean build of the
    folder written last, no temporary folder is left, no traceback anywhere."""
    import threading

    import chat_app

    settings, embedder, _ = real_seeds_index
    app = chat_app.start(settings.index_dir, tmp_path / "app", timeout=240)
    folders = [article_folder(tmp_path / f"writer{i}", {f"{name}": f"{text} Meldung {i}." for name, text in TINY.items()}
                           | {f"extra{i}": f"Sonderbericht {i}: Meta investiert {i + 1} Milliarden Euro."})
               for i in range(3)]
    deadline = time.monotonic() + 60
    runs, reads, failures, loads = [], [0], [], [0]
    lock = threading.Lock()

    def write(i):
        while time.monotonic() < deadline:
            result = run_rag("index", folders[i], "--index-dir", app.index_dir, timeout=600)
            with lock:
                runs.append((time.monotonic(), i, result.returncode, result.stderr))

    def ask():
        while time.monotonic() < deadline:
            try:
                kind, answer = call_answer(app.url, "Wie viel investiert Meta 2026?", timeout=300)
                assert kind == "complete" and answer["citations"], answer
                with lock:
                    reads[0] += 1
            except Exception as err:  # noqa: BLE001 - every failure is reported below
                failures.append(repr(err))

    def load():
        while time.monotonic() < deadline:
            try:
                index = load_index(app.index_dir)
                assert all(c.text in index.articles[c.doc_id].text for c in index.chunks)
                loads[0] += 1
            except Exception as err:  # noqa: BLE001
                failures.append(repr(err))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(3)]
    threads += [threading.Thread(target=ask) for _ in range(16)] + [threading.Thread(target=load)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        app.process.terminate()
        app.process.wait(20)
    print(f"\nstress: {len(runs)} index runs, {reads[0]} answers, {loads[0]} loads from disk, {len(failures)} failures")
    assert not failures, failures[:5]
    assert runs and all(rc == 0 for _, _, rc, _ in runs), [err for _, _, rc, err in runs if rc][:2]
    assert not any("Traceback" in err for *_, err in runs) and "Traceback" not in app.log()
    last = max(runs)[1]
    clean = settings.model_copy(update={"index_dir": tmp_path / "clean"})
    build_index(folders[last], clean, embedder)
    final, expected = load_index(app.index_dir), load_index(clean.index_dir)
    assert [(c.chunk_id, c.text, c.text_hash) for c in final.chunks] == \
        [(c.chunk_id, c.text, c.text_hash) for c in expected.chunks]
    hidden = sorted(p.name for p in app.index_dir.parent.iterdir() if p.name.startswith(f".{app.index_dir.name}"))
    assert hidden == [f".{app.index_dir.name}.lock", os.readlink(app.index_dir)]
