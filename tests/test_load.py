"""Load: 16 concurrent `/answer` callers for 60 s on loopback (bounded). Run: python -m pytest -m slow tests/test_load.py -s"""

import json
import statistics
import threading
import time

import pytest

import chat_app

CALLERS = 16
SECONDS = 60.0
QUESTIONS = [("Wie viel investiert Meta 2026?", "135"), ("How much will Meta invest in 2026?", "135"),
             ("Wie viel zahlte Meta für Scale AI?", "14,3")]


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status", encoding="ascii"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@pytest.mark.slow
def test_sixteen_callers_for_a_minute(real_seeds_index, tmp_path_factory):
    sixteen_callers(chat_app.shared(real_seeds_index, tmp_path_factory))


def sixteen_callers(app: chat_app.RunningApp) -> None:
    """16 threads ask the app's `/answer` for 60 s: no error, no wrong answer, memory bounded (also run on a
    Milvus-backed chat by tests/test_milvus.py)."""
    from gradio_client import Client

    Client(app.url, verbose=False).predict("Aufwärmen", api_name="/answer")
    memory_before = rss_mb(app.process.pid)
    latencies, wrong, errors = [], [], []
    lock = threading.Lock()
    deadline = time.monotonic() + SECONDS

    def caller(number: int) -> None:
        client = Client(app.url, verbose=False)
        i = number
        while time.monotonic() < deadline:
            question, expected = QUESTIONS[i % len(QUESTIONS)]
            i += 1
            started = time.perf_counter()
            try:
                result = client.predict(question, api_name="/answer")
            except Exception as err:  # recorded and asserted below
                with lock:
                    errors.append(repr(err))
                continue
            result = json.loads(result) if isinstance(result, str) else result
            with lock:
                latencies.append(time.perf_counter() - started)
                if expected not in (result.get("answer") or ""):
                    wrong.append((question, result.get("answer")))

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(CALLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=SECONDS + 120)
    memory_after = rss_mb(app.process.pid)
    p95 = statistics.quantiles(latencies, n=20)[-1]
    print(f"\nload: {len(latencies)} answers in {SECONDS:.0f} s = {len(latencies) / SECONDS:.1f}/s, "
          f"p50 {statistics.median(latencies) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
          f"RSS {memory_before:.0f} → {memory_after:.0f} MB, wrong {len(wrong)}, errors {len(errors)}")
    assert not errors and not wrong
    assert memory_after < memory_before * 1.5 + 100
