"""Measurements for ``rag bench``: timed CLI runs in fresh processes, memory, per-stage latency against the floor,
dense recall against exact search.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from rag.settings import Settings

STAGES = ("query_embedding", "dense_search", "bm25", "fusion", "retrieval", "answer", "floor",
          "floor_embedding", "floor_search")

def summary(seconds: list[float]) -> dict:
    """p50/p95/mean in milliseconds of a list of durations in seconds."""
    values = np.asarray(seconds, np.float64) * 1000.0
    if not len(values):
        return {"n": 0}
    return {"n": int(len(values)), "p50": round(float(np.percentile(values, 50)), 3),
            "p95": round(float(np.percentile(values, 95)), 3), "mean": round(float(values.mean()), 3)}


def rss_mb(field_name: str = "VmRSS") -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def reset_peak() -> bool:
    """Reset this process's peak RSS (Linux ``clear_refs``), so each size reports its own peak."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []





def _cli() -> list[str]:
    script = Path(sys.executable).with_name("rag")
    return [str(script)] if script.exists() else [sys.executable, "-m", "rag.cli"]


def process_mb(pid: int, field_name: str = "VmHWM") -> float | None:
    """A memory figure of another process from ``/proc/PID/status`` (peak resident set by default), in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        return None
    return None


def timed_command(args: list[str], env: dict | None = None, timeout: float = 600) -> dict:
    """Wall time and peak memory of one child process.

    The peak is the child's own ``VmHWM``, polled while it runs (its last value before exit): ``ru_maxrss``
    of a child also counts the parent's memory at fork time, useless when the parent holds a million passages.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(args, stdout=out, stderr=err, env=env)
        deadline = started + timeout
        peak = None
        while True:
            peak = process_mb(process.pid) or peak
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.005)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return {"seconds": round(seconds, 3), "exit": process.returncode, "max_rss_mb": round(peak, 1) if peak else None,
                "stdout": out.read().decode("utf-8", "replace"), "stderr": err.read().decode("utf-8", "replace")[-500:]}


def startup(index_dir: Path, question: str, runs: int = 3, env: dict | None = None) -> dict:
    """``rag --help`` and cold ``rag search``/``rag ask`` (process start → answer printed), median of ``runs``."""
    result: dict = {}
    helps = [timed_command(_cli() + ["--help"], env) for _ in range(max(runs, 3))]
    result["help_seconds"] = float(np.median([h["seconds"] for h in helps]))
    commands = {"search": ["search", question, "--index-dir", str(index_dir), "--json", "-k", "10"]}
    if re.search(r"^\W*ask\s", helps[0]["stdout"], re.MULTILINE):  # a command row "│ ask  …"
        commands["ask"] = ["ask", question, "--index-dir", str(index_dir), "--json"]
    for name, args in commands.items():
        runs_ = [timed_command(_cli() + args, env) for _ in range(runs)]
        ok = [r for r in runs_ if r["exit"] == 0]
        result[f"{name}_cold_seconds"] = float(np.median([r["seconds"] for r in ok])) if ok else None
        result[f"{name}_max_rss_mb"] = max((r["max_rss_mb"] for r in ok if r["max_rss_mb"]), default=None)
        if not ok:
            result[f"{name}_error"] = runs_[0]["stderr"].strip().splitlines()[-1:] if runs_[0]["stderr"] else ["failed"]
    return result


PROBE = """
import json, sys, time
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS:'): return int(line.split()[1]) / 1024
import faiss, numpy, rag.retrieve.retrieval
from rag.index.store import load_index


base = rss(); t = time.perf_counter()
index = load_index(sys.argv[1])
load = time.perf_counter() - t; after = rss()
for row in (0, len(index.chunks) // 2, len(index.chunks) - 1):
    index.chunks[row]
def peak():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'): return int(line.split()[1]) / 1024
print(json.dumps({"load_seconds": round(load, 3), "rss_before_mb": round(base, 1), "rss_after_load_mb": round(after, 1),
                  "index_memory_mb": round(after - base, 1), "process_peak_mb": round(peak(), 1)}))
"""


def probe_load(index_dir: Path) -> dict:
    """Load time and memory of an index in a fresh process (page cache warm: it was just written or read)."""
    run = timed_command([sys.executable, "-c", PROBE, str(index_dir)])
    if run["exit"] != 0:
        return {"error": run["stderr"].strip().splitlines()[-1:] if run["stderr"] else "failed"}
    return json.loads(run["stdout"].strip().splitlines()[-1])


def index_files_mb(index_dir: Path) -> dict:
    sizes: dict[str, float] = {}
    for path in Path(index_dir).rglob("*"):
        if path.is_file():
            key = "bm25" if path.parent.name == "bm25" else path.name
            sizes[key] = sizes.get(key, 0.0) + path.stat().st_size / 1e6
    return {k: round(v, 1) for k, v in sorted(sizes.items())}


def latency(retriever, questions: list[str], rounds: int, answerer=None) -> dict:
    """Per-stage latencies, total retrieval and the floor, interleaved question by question."""
    settings, index, embedder = retriever.settings, retriever.index, retriever.embedder
    bare = getattr(embedder, "model", None)
    bare_query = (lambda q: bare.query([q])) if bare is not None and hasattr(bare, "query") else (lambda q: embedder.embed_queries([q]))
    k, n = settings.top_k, max(settings.candidates, settings.top_k)
    samples: dict[str, list[float]] = {s: [] for s in STAGES}
    answer_error = None
    order = 0
    for _ in range(rounds):
        for question in questions:
            order += 1
            steps = ["floor", "ours", "stages"]
            steps = steps[order % 3:] + steps[:order % 3]  # rotate so no part always runs first
            for step in steps:
                if step == "floor":
                    t0 = time.perf_counter()
                    vector = np.asarray(bare_query(question), np.float32).reshape(1, -1)
                    t1 = time.perf_counter()
                    index.dense.search(vector, k)
                    t2 = time.perf_counter()
                    samples["floor_embedding"].append(t1 - t0)
                    samples["floor_search"].append(t2 - t1)
                    samples["floor"].append(t2 - t0)
                elif step == "ours":
                    retriever.forget_last_question()  # the "stages" step may have searched this question just before
                    t0 = time.perf_counter()
                    hits = retriever.run(question, k=k)
                    samples["retrieval"].append(time.perf_counter() - t0)
                    if answerer is not None:
                        t0 = time.perf_counter()
                        try:
                            answerer.run(question, hits=hits)
                        except Exception as err:  # the answerer is another module's: report, do not abort
                            answer_error, answerer = f"{type(err).__name__}: {err}", None
                            continue
                        samples["answer"].append(time.perf_counter() - t0)
                else:
                    retriever.forget_last_question()
                    t0 = time.perf_counter()
                    retriever.query_vector(question)
                    t1 = time.perf_counter()
                    dense = retriever.dense_search(question, n)
                    t2 = time.perf_counter()
                    lexical = retriever.bm25_search(question, n)
                    t3 = time.perf_counter()
                    sentence = retriever.sentence_search(question, list(set(dense) | set(lexical)))
                    ranked = retriever.rank(question, dense, lexical, sentence, k)
                    [retriever._hit(row, score, dense, lexical) for row, score in ranked[:k]]
                    t4 = time.perf_counter()
                    samples["query_embedding"].append(t1 - t0)
                    samples["dense_search"].append(t2 - t1)
                    samples["bm25"].append(t3 - t2)
                    samples["fusion"].append(t4 - t3)
    result = {stage: summary(values) for stage, values in samples.items() if values}
    floor, ours = result["floor"], result["retrieval"]
    result["ratio_to_floor_p50"] = round(ours["p50"] / floor["p50"], 3)
    result["ratio_to_floor_mean"] = round(ours["mean"] / floor["mean"], 3)
    if answer_error:
        result["answer_error"] = answer_error
    return result


def batch_throughput(retriever, answerer, questions: list[str], work: Path, workers: int, repeat: int = 3) -> dict:
    """`rag batch`'s questions per second on a file of ``questions`` (the list ``repeat`` times, so that a run
    lasts long enough to time), answered one at a time and ``workers`` at once, back to back in one process (the
    load of a shared machine drifts: the ratio is what to compare)."""
    from rag.batch import run_batch

    path = work / "bench-batch-questions.txt"
    path.write_text("\n".join(q.replace("\n", " ") for q in questions * repeat) + "\n", encoding="utf-8")

    def respond(item):
        return answerer.run(item.question, item.id, retriever.run(item.question, k=retriever.settings.top_k))

    result: dict = {"questions": len(questions) * repeat, "workers": workers}
    for name, n in (("one_at_a_time", 1), ("at_once", workers)):
        summary = run_batch(path, work / "bench-batch-answers.jsonl", respond, workers=n)
        result[name] = {"seconds": summary.seconds, "questions_per_s": round(summary.answered / summary.seconds, 2)}
    result["speedup"] = round(result["at_once"]["questions_per_s"] / result["one_at_a_time"]["questions_per_s"], 3)
    path.unlink()
    (work / "bench-batch-answers.jsonl").unlink(missing_ok=True)
    return result


def dense_recall(index, query_vectors: np.ndarray, k: int = 10) -> dict:
    """recall@k (and @100) of the index's dense search against exact search over the same vectors."""
    import faiss

    from rag.index.dense import ann_recall

    if index.params.get("dense", {"type": "flat"})["type"] == "flat":
        return {"recall_at_10": 1.0, "recall_at_100": 1.0, "exact": True}
    vectors = index.vectors()
    queries = np.ascontiguousarray(query_vectors, np.float32)
    _, truth = faiss.knn(queries, vectors, 100, metric=faiss.METRIC_INNER_PRODUCT)
    del vectors
    return {"recall_at_10": round(ann_recall(index.dense, queries, truth[:, :k], k), 4),
            "recall_at_100": round(ann_recall(index.dense, queries, truth, 100), 4), "exact": False,
            "queries": len(queries)}


def dense_search_latency(dense, query_vectors: np.ndarray, k: int) -> dict:
    """Single-query search latency of a FAISS index for precomputed query vectors."""
    times = []
    for vector in query_vectors:
        t0 = time.perf_counter()
        dense.search(vector.reshape(1, -1), k)
        times.append(time.perf_counter() - t0)
    return summary(times)


def ann_comparison(index, query_vectors: np.ndarray, settings: Settings, log: Callable[[str], None]) -> dict:
    """IVF-Flat and HNSW-Flat built on the same vectors: build time, size, recall and single-query latency."""
    import faiss

    from rag.index.dense import ann_recall, build_dense

    vectors = index.vectors()
    queries = np.ascontiguousarray(query_vectors, np.float32)
    _, truth = faiss.knn(queries, vectors, 100, metric=faiss.METRIC_INNER_PRODUCT)
    k = max(settings.candidates, settings.top_k)
    result = {}
    for kind in ("ivf", "hnsw"):
        started = time.perf_counter()
        dense, info = build_dense(vectors, vectors.shape[1], settings.model_copy(update={"exact_max_passages": 1, "ann_index": kind}))
        seconds = time.perf_counter() - started
        faiss.omp_set_num_threads(1)
        result[kind] = {"build_seconds": round(seconds, 1), "params": info,
                        "megabytes": round(len(faiss.serialize_index(dense)) / 1e6, 1),
                        "recall_at_10": round(ann_recall(dense, queries, truth[:, :10], 10), 4),
                        "recall_at_100": round(ann_recall(dense, queries, truth, 100), 4),
                        "search_ms": dense_search_latency(dense, queries, k)}
        log(f"bench: {kind} on {len(vectors):,} vectors: {result[kind]}")
        del dense
    return result
