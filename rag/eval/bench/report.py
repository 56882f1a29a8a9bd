"""The bench report: targets checked, Markdown table, chart, JSON.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import numpy as np

from rag.settings import Settings

from rag.eval.bench.indexing import render_indexing
from rag.eval.bench.milvus import render_milvus
from rag.eval.bench.measure import load_average
from rag.eval.bench import synthetic
from rag.eval.bench.synthetic import FOLDER_MAX, NOISE


TARGETS = {
    "seeds_ratio_to_floor": 1.3,
    "p50_ms_100k": 40.0,
    "p95_ms_100k": 80.0,
    "dense_p50_ms_1m": 20.0,
    "recall_at_10_1m": 0.95,
    "index_memory_gb_1m": 3.0,
    "load_seconds_1m": 10.0,
    "incremental_overhead_seconds_10k": 2.0,
    "help_seconds": 0.5,
    "cold_ask_seconds_seeds": 4.0,
    "batch_questions_per_s_seeds": 20.0,
}


def method_text() -> str:
    """The module docstring's account of the synthetic corpora, with the constants filled in."""
    text = "Synthetic corpora " + synthetic.__doc__.split("Synthetic corpora ", 1)[1].strip()
    return text.replace("``FOLDER_MAX``", f"{FOLDER_MAX:,}").replace("``NOISE``", str(NOISE))


def machine_info(settings: Settings) -> dict:
    import faiss

    return {"cpus": os.cpu_count(), "threads": settings.threads, "python": platform.python_version(),
            "platform": platform.platform(), "numpy": np.__version__, "faiss": faiss.__version__,
            "load_average_at_start": load_average(), "embedder": settings.embedder}


def _size(result: dict, *names: str) -> dict | None:
    return next((s for s in result["sizes"] if s["name"] in names), None)


def check_targets(result: dict) -> list[dict]:
    """Each acceptance target with the measured value and whether it is met (None: size not run)."""
    rows = []

    def add(target: str, limit: float, value, better: str = "below", note: str = "") -> None:
        met = None if value is None else (value <= limit if better == "below" else value >= limit)
        rows.append({"target": target, "limit": limit, "value": value, "met": met, "note": note})

    seeds, k10, k100, m1 = _size(result, "seeds"), _size(result, "10k"), _size(result, "100k"), _size(result, "1m")
    add("seeds: retrieval p50 / floor p50 ≤ 1.3", TARGETS["seeds_ratio_to_floor"],
        seeds and seeds["latency_ms"]["ratio_to_floor_p50"])
    add("100k: retrieval p50 ≤ 40 ms", TARGETS["p50_ms_100k"], k100 and k100["latency_ms"]["retrieval"]["p50"])
    add("100k: retrieval p95 ≤ 80 ms", TARGETS["p95_ms_100k"], k100 and k100["latency_ms"]["retrieval"]["p95"])
    add("1M: dense search p50 ≤ 20 ms (approximate index)", TARGETS["dense_p50_ms_1m"],
        m1 and m1["latency_ms"]["dense_search"]["p50"])
    add("1M: recall@10 vs exact ≥ 0.95", TARGETS["recall_at_10_1m"], m1 and m1["recall"]["recall_at_10"], "above")
    add("1M: index memory ≤ 3 GB", TARGETS["index_memory_gb_1m"],
        m1 and round(m1["load_fresh_process"].get("index_memory_mb", float("nan")) / 1024, 3))
    add("1M: load time ≤ 10 s", TARGETS["load_seconds_1m"], m1 and m1["load_fresh_process"].get("load_seconds"))
    inc = k10 and k10.get("incremental")
    add("10k: add one article = its embedding + ≤ 2 s", TARGETS["incremental_overhead_seconds_10k"],
        inc and inc["add_one_article"]["overhead_seconds"],
        note=inc and f"embedding {inc['add_one_article']['embed_seconds']} s of {inc['add_one_article']['seconds']} s" or "")
    add("10k: unchanged folder embeds nothing", 0, inc and inc["unchanged"]["embedded"])
    start = seeds and seeds.get("startup")
    add("rag --help ≤ 0.5 s", TARGETS["help_seconds"], start and start["help_seconds"])
    cold = start and (start.get("ask_cold_seconds") or start.get("search_cold_seconds"))
    add(f"rag {'ask' if start and start.get('ask_cold_seconds') else 'search'} cold on the seeds ≤ 4 s",
        TARGETS["cold_ask_seconds_seeds"], cold)
    batch = seeds and seeds.get("batch")
    add("seeds: rag batch ≥ 20 questions/s (extractive)", TARGETS["batch_questions_per_s_seeds"],
        batch and batch["at_once"]["questions_per_s"], "above",
        note=batch and f"{batch['one_at_a_time']['questions_per_s']} one at a time, {batch['workers']} at once "
                       f"{batch['speedup']}×" or "")
    return rows


def _fmt(value, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def render_markdown(result: dict) -> str:
    m = result["machine"]
    lines = ["# `rag bench`: cost by corpus size", "",
             f"Run {result['created']} on {m['cpus']} CPUs ({m['threads']} threads), Python {m['python']}, "
             f"faiss {m['faiss']}, numpy {m['numpy']}; load average at start {m['load_average_at_start']} "
             f"(the machine is shared: a load above {m['cpus']} means other jobs competed for the cores). "
             f"Total {result['seconds']:.0f} s.", "",
             "## Targets", "", "| target | measured | met |", "|---|---|---|"]
    for row in result["targets"]:
        met = {True: "yes", False: "**no**", None: "not run"}[row["met"]]
        lines.append(f"| {row['target']} | {_fmt(row['value'], 3)}{(' (' + row['note'] + ')') if row['note'] else ''} | {met} |")
    lines += ["", "## Retrieval latency (ms, p50 / p95)", "",
              "| size | passages | dense index | query embedding | dense search | BM25 | fusion | **retrieval** | answer | floor | ratio p50 |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in result["sizes"]:
        lat = s["latency_ms"]

        def pp(stage: str) -> str:
            v = lat.get(stage)
            return f"{v['p50']:.1f} / {v['p95']:.1f}" if v and v.get("n") else "–"

        dense = s["dense"]
        kind = dense["type"] + (f" (nlist {dense['nlist']}, nprobe {dense['nprobe']})" if dense["type"] == "ivf" else "") \
            + (f" (M {dense['m']}, efSearch {dense.get('ef_search')})" if dense["type"] == "hnsw" else "")
        lines.append(f"| {s['name']} | {s['passages']:,} | {kind} | {pp('query_embedding')} | {pp('dense_search')} | {pp('bm25')} | "
                     f"{pp('fusion')} | **{pp('retrieval')}** | {pp('answer')} | {pp('floor')} | {lat['ratio_to_floor_p50']:.2f} |")
    lines += ["", "Floor = the bare embedder's query call + bare FAISS search (k = 10) of the same question, measured "
              "interleaved with our retrieval (`Retriever.run`, hybrid, 100 candidates per list) in the same loop. "
              "Stage columns are measured separately in the same loop; retrieval is end to end.", "",
              "## Index: build, load, memory, recall", "",
              "| size | articles | build path | build s | passages/s (w/o embedding) | load s (fresh process) | index memory MB | files MB | recall@10 vs exact | recall@100 |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for s in result["sizes"]:
        b, load, rec = s["build"], s["load_fresh_process"], s["recall"]
        rate = b.get("passages_per_s_without_embedding", b.get("passages_per_s"))
        lines.append(f"| {s['name']} | {s['articles']:,} | {s['build_path'].split(' (')[0]} | {b['seconds']:.1f} | {_fmt(rate)} | "
                     f"{_fmt(load.get('load_seconds'), 2)} | {_fmt(load.get('index_memory_mb'))} | {_fmt(round(sum(s['files_mb'].values()), 1))} | "
                     f"{'exact' if rec.get('exact') else _fmt(rec['recall_at_10'], 3)} | {'exact' if rec.get('exact') else _fmt(rec['recall_at_100'], 3)} |")
    for s in result["sizes"]:
        comparison = s.get("ann_comparison")
        if comparison:
            lines += ["", f"## Approximate index choice ({s['passages']:,} passages, same vectors, same questions)", "",
                      "| index | setting (tuned) | build s | MB | recall@10 | recall@100 | search p50 / p95 ms (k = 100) |",
                      "|---|---|---|---|---|---|---|"]
            for kind, row in comparison.items():
                setting = {k: v for k, v in row["params"].items() if k in ("nlist", "nprobe", "m", "ef_search")}
                lines.append(f"| {kind} | {setting} | {row['build_seconds']:.1f} | {row['megabytes']:.0f} | {row['recall_at_10']:.3f} | "
                             f"{row['recall_at_100']:.3f} | {row['search_ms']['p50']:.2f} / {row['search_ms']['p95']:.2f} |")
    milvus = render_milvus(result)
    if milvus:
        lines += ["", *milvus]
    seeds = _size(result, "seeds")
    if seeds:
        b, e = seeds["build"], seeds["bare_embedder"]
        lines += ["", "## Indexing throughput against the bare embedder (seeds, the real embedder, same run)", "",
                  "| | passages/s | tokens/s |", "|---|---|---|",
                  f"| `rag index` (read, chunk, embed, BM25, write) | {b['passages_per_s']:.2f} | {b['tokens_per_s']:.0f} |",
                  f"| bare `embed_passages`, same texts, batches of 16 | {e['passages_per_s']:.2f} | {e['tokens_per_s']:.0f} |",
                  "", f"Build / bare = {b['ratio_to_bare_embedder']:.2f}; embedding is "
                  f"{100 * (b['timings'].get('embed', 0) + b['timings'].get('sentences', 0)) / max(b['seconds'], 1e-9):.0f} % "
                  f"of the build. The bare embedder embeds the same passages and sentence windows right before and right "
                  f"after the build ({e['seconds_before_and_after_build'][0]:.1f} s and "
                  f"{e['seconds_before_and_after_build'][1]:.1f} s; their mean is used), so a drifting machine load shows as their spread."]
    if "indexing" in result:
        lines += ["", *render_indexing(result["indexing"])]
    lines += ["", "## Incremental indexing (real embedder for the new article)", "",
              "| size | add one article: total s | its embedding s | rest s | embedded / reused | remove it: s, removed | unchanged: s, embedded |",
              "|---|---|---|---|---|---|---|"]
    for s in result["sizes"]:
        inc = s.get("incremental")
        if inc:
            a, r, u = inc["add_one_article"], inc["remove_it"], inc["unchanged"]
            lines.append(f"| {s['name']} | {a['seconds']:.2f} | {a['embed_seconds']:.2f} | {a['overhead_seconds']:.2f} | "
                         f"{a['embedded']} / {a['reused']} | {r['seconds']:.2f}, {r['removed']} | {u['seconds']:.2f}, {u['embedded']} |")
    lines += ["", "## Start-up (process start → output, median)", "", "| size | `rag --help` s | `rag search` cold s | `rag ask` cold s | peak RSS MB (search) |",
              "|---|---|---|---|---|"]
    for s in result["sizes"]:
        st = s.get("startup", {})
        lines.append(f"| {s['name']} | {_fmt(st.get('help_seconds'), 2)} | {_fmt(st.get('search_cold_seconds'), 2)} | "
                     f"{_fmt(st.get('ask_cold_seconds'), 2)} | {_fmt(st.get('search_max_rss_mb'))} |")
    lines += ["", "## Machine load during each size", "", "| size | load average before | after | size wall s |", "|---|---|---|---|"]
    for s in result["sizes"]:
        lines.append(f"| {s['name']} | {s['load_average']['before']} | {s['load_average']['after']} | {s['seconds']:.0f} |")
    lines += ["", "## Method", "", result["method"]["synthetic"], "",
              f"Queries: the seeds use the German questions of `eval/questions_de.jsonl`; synthetic sizes use "
              f"{result['method']['queries_per_size']} XQuAD-de questions (× {result['method']['rounds']} rounds), embedded "
              "by the real embedder at query time. Recall@10 compares the dense index's top 10 with exact inner-product search over "
              "the same stored vectors, for the same questions' real vectors. Index memory = resident memory after "
              "`load_index` minus before, in a fresh process (JSON-lines rows and large BM25 arrays are memory-mapped and "
              "read on demand). Peak memory of the build: `VmHWM` of the benchmark process, reset before each size.", ""]
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [s for s in result["sizes"]]
    x = [s["passages"] for s in sizes]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ax = axes[0]
    for stage, style in (("retrieval", "o-"), ("floor", "k--"), ("query_embedding", "s:"), ("dense_search", "^:"),
                         ("bm25", "v:"), ("fusion", "d:")):
        ax.plot(x, [s["latency_ms"][stage]["p50"] for s in sizes], style, label=stage.replace("_", " "))
    ax.plot(x, [s["latency_ms"]["retrieval"]["p95"] for s in sizes], "o-", alpha=0.35, label="retrieval p95")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("passages")
    ax.set_ylabel("ms (p50)")
    ax.set_title("Latency vs corpus size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax = axes[1]
    ax.plot(x, [s["load_fresh_process"].get("load_seconds", np.nan) for s in sizes], "o-", label="load s (fresh process)")
    ax.plot(x, [s["load_fresh_process"].get("index_memory_mb", np.nan) / 1024 for s in sizes], "s-", label="index memory GB")
    ax.plot(x, [s["build"]["seconds"] / 60 for s in sizes], "^-", label="build min")
    ax.set_xscale("log")
    ax.set_xlabel("passages")
    ax.set_title("Load, memory, build")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_reports(result: dict, out: Path) -> dict:
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = {"json": out.with_suffix(".json"), "markdown": out.with_suffix(".md"), "png": out.with_suffix(".png")}
    paths["json"].write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    paths["markdown"].write_text(render_markdown(result), encoding="utf-8")
    try:
        plot(result, paths["png"])
    except ImportError:
        paths.pop("png")
    return paths
