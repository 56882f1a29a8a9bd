"""``rag bench --backend milvus``: each size's index searched through Milvus next to FAISS, in the same run.

Why in the bench: issue 17 asks for Milvus's retrieval latency and memory next to FAISS's on the same passages and
the same questions, measured the way every other bench number is. Each size's index folder (built as usual) has its
rows written into a Milvus collection by ``sync_index``, the code ``rag index --backend milvus`` runs after a build;
then the same questions go through ``Retriever(..., store=...)`` in the same latency loop as FAISS
(``measure.latency``), so the dense and BM25 stages are Milvus's searches and the rest (query embedding, sentence
signals, fusion) is shared. Agreement: the top passage and the top 10 of both backends for every question.

Memory: the Milvus server's resident memory (and its peak, which includes the writing), read from ``/proc`` when the
server is a child process of the bench, as Milvus Lite is for a ``.db`` URI; a remote server's memory is not
visible from here and is reported as not measured.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from rag.eval.bench.measure import latency, process_mb
from rag.index.milvus import MilvusStore, default_collection, normalise_uri, open_store, sync_index

STAGES = ("dense_search", "bm25", "fusion", "query_embedding", "retrieval")


def milvus_children() -> list[int]:
    """PIDs of this process's children named ``milvus`` (Milvus Lite's server for a ``.db`` URI)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        if name == "milvus" and int(rest[1]) == os.getpid():
            found.append(int(entry.name))
    return found


def server_memory() -> dict:
    pids = milvus_children()
    if not pids:
        return {"measured": False, "note": "the Milvus server is not a process of this machine started by the bench"}
    return {"measured": True, "rss_mb": round(sum(process_mb(p, "VmRSS") or 0.0 for p in pids), 1),
            "peak_mb": round(sum(process_mb(p) or 0.0 for p in pids), 1)}


def agreement(faiss, served, questions: list[str], k: int) -> dict:
    """How often both backends put the same passage first, and the mean share of their top ``k`` they share."""
    same_first, overlap = 0, 0.0
    for question in questions:
        one = [h.chunk_id for h in faiss.run(question, k=k)]
        other = [h.chunk_id for h in served.run(question, k=k)]
        same_first += bool(one) and bool(other) and one[0] == other[0]
        overlap += len(set(one) & set(other)) / max(len(one), 1)
    return {"questions": len(questions), "same_top_1": round(same_first / max(len(questions), 1), 4),
            f"top_{k}_overlap": round(overlap / max(len(questions), 1), 4)}


def bench_milvus(ctx, index_dir: Path, questions: list[str]) -> dict:
    """Write ``index_dir``'s rows into a fresh collection at ``ctx.milvus_uri``, then measure retrieval through it."""
    from rag.index.store import load_index
    from rag.retrieve.retrieval import Retriever

    uri = normalise_uri(ctx.milvus_uri)
    backend = {"type": "milvus", "uri": uri, "collection": default_collection(Path(f"bench_{index_dir.name}"))}
    embedder = ctx.embedder
    store = MilvusStore.connect(uri, backend["collection"])
    store.drop()  # a collection left by an earlier run would make the write an update
    store.prepare(embedder.model_id, embedder.dim)
    started = time.perf_counter()
    report = sync_index(store, index_dir, ctx.log)
    seconds = time.perf_counter() - started
    result: dict = {"uri": uri if uri.startswith(("http://", "https://")) else "Milvus Lite (local .db file)",
                    "collection": backend["collection"],
                    "write": {"rows": report.rows, "seconds": round(seconds, 1),
                              "rows_per_s": round(report.rows / max(seconds, 1e-9), 1)}}
    settings = ctx.settings.model_copy(update={"index_dir": index_dir})
    index = load_index(index_dir, embedder.model_id)
    store = open_store(dict(index.params, backend=backend))
    try:
        served = Retriever(index, embedder, settings, store=store)
        served.warm_up()
        measured = latency(served, questions, ctx.rounds)
        result["latency_ms"] = {stage: measured[stage] for stage in STAGES}
        result["latency_ms"]["ratio_to_floor_p50"] = measured["ratio_to_floor_p50"]
        result["server_memory"] = server_memory()
        faiss = Retriever(index, embedder, settings)
        faiss.warm_up()
        result["agreement"] = agreement(faiss, served, questions, settings.top_k)
        if not ctx.keep:
            store.drop()
    finally:
        store.close()
    ctx.log(f"bench: Milvus {result['collection']}: {report.rows:,} rows written in {seconds:.0f} s, retrieval p50 "
            f"{result['latency_ms']['retrieval']['p50']:.1f} ms")
    return result


def render_milvus(result: dict) -> list[str]:
    """The report's section: Milvus next to FAISS for every size measured on both (empty when none was)."""
    sizes = [s for s in result["sizes"] if s.get("milvus")]
    if not sizes:
        return []
    lines = ["## Milvus next to FAISS (same passages, same questions, same run; `--backend milvus`)", "",
             "| size | passages | stage (ms, p50 / p95) | FAISS | Milvus |", "|---|---|---|---|---|"]
    for s in sizes:
        m = s["milvus"]
        for stage in STAGES:
            ours, theirs = s["latency_ms"][stage], m["latency_ms"][stage]
            label = f"**{stage.replace('_', ' ')}**" if stage == "retrieval" else stage.replace("_", " ")
            lines.append(f"| {s['name']} | {s['passages']:,} | {label} | {ours['p50']:.1f} / {ours['p95']:.1f} | "
                         f"{theirs['p50']:.1f} / {theirs['p95']:.1f} |")
    lines += ["", "| size | Milvus | rows written | write s (rows/s) | Milvus server RSS MB (peak) | FAISS index memory MB "
              "(fresh process) | same top 1 | top-10 overlap |", "|---|---|---|---|---|---|---|---|"]
    for s in sizes:
        m, mem, agree = s["milvus"], s["milvus"]["server_memory"], s["milvus"]["agreement"]
        memory = f"{mem['rss_mb']:,.0f} ({mem['peak_mb']:,.0f})" if mem.get("measured") else "not measured (remote)"
        overlap = next((v for k, v in agree.items() if k.startswith("top_") and k.endswith("_overlap")), None)
        lines.append(f"| {s['name']} | {m['uri']} | {m['write']['rows']:,} | {m['write']['seconds']:.0f} "
                     f"({m['write']['rows_per_s']:,.0f}) | {memory} | "
                     f"{s['load_fresh_process'].get('index_memory_mb', '–')} | {agree['same_top_1']:.2f} | "
                     f"{overlap:.2f} |")
    lines += ["", "Milvus rows are written by `sync_index` (what `rag index --backend milvus` runs after a build) "
              "from the size's index folder; the dense and BM25 stages are then Milvus searches (100 candidates each, "
              "the date filter empty), query embedding, the sentence signals and the fusion are shared code. Milvus Lite "
              "searches its dense vectors exactly (FLAT), where FAISS above 20,000 passages uses a tuned IVF index, "
              "so the two top-10 lists differ by the approximation (and by the two BM25 implementations). The server's "
              "memory is its resident set after the questions; its peak includes the writing. The FAISS column is the "
              "index folder's memory in a fresh client process (a Milvus-backed folder has no `dense.faiss` and no "
              "BM25 score matrix, so its client loads less)."]
    return lines
