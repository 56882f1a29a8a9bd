"""``rag bench``: what the pipeline costs as the corpus grows, measured in one run on this machine.

For each corpus size (the seeds; synthetic corpora of 10k, 100k, 1M passages) it measures index build
throughput, the dense index's type and recall@10 against exact search, index load time and memory in a
fresh process, cold start of ``rag search``/``rag ask``, per-stage retrieval latency (query embedding, dense
search, BM25, fusion, total retrieval, answer) and, in the same loop, the **floor**: the bare embedder call
plus a bare FAISS search for the same question. Our retrieval p50 is reported as a ratio to the floor p50.

How the synthetic corpora are made: ``rag.eval.bench.synthetic``.

Incremental indexing is measured on the folder-built sizes with the *real* embedder: one new article is added
(its own embedding time is reported separately from the rest), the unchanged folder is indexed again, and
the article is removed.
"""

from __future__ import annotations

import gc
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from rag.index.versions import remove_index
from rag.settings import Settings, project_root

from rag.eval.bench.measure import (ann_comparison, batch_throughput, dense_recall, dense_search_latency,
                                  index_files_mb, latency, load_average, probe_load, reset_peak, rss_mb, startup)
from rag.eval.bench.report import check_targets, machine_info, method_text, write_reports
from rag.eval.bench.indexing import bench_indexing
from rag.eval.bench.synthetic import (FOLDER_MAX, NOISE, Material, SyntheticEmbedder, load_material, synthetic_article,
                                      synthetic_records, write_synthetic_folder)


INCREMENTAL_MAX = 20_000
COMPARE_ANN = (50_000, 200_000)  # sizes at which IVF and HNSW are both built and compared
ANSWER_MAX = 20_000
SIZE_NAMES = {"seeds": 0, "10k": 10_000, "100k": 100_000, "1m": 1_000_000}



def parse_sizes(text: str) -> list[tuple[str, int]]:
    """``seeds,10k,100k,1m`` (also plain numbers such as ``2000``, ``5k``, ``1.5m``) → ``[(name, passages)]``."""
    sizes = []
    for item in (s.strip().lower() for s in text.split(",") if s.strip()):
        if item in SIZE_NAMES:
            sizes.append((item, SIZE_NAMES[item]))
            continue
        match = re.fullmatch(r"(\d+(?:\.\d+)?)([km]?)", item)
        if not match:
            raise ValueError(f"unknown corpus size {item!r}: use seeds, 10k, 100k, 1m or a number of passages")
        value = int(float(match.group(1)) * {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2)])
        if value < 100:
            raise ValueError(f"a synthetic corpus needs at least 100 passages, not {value}")
        sizes.append((item, value))
    if not sizes:
        raise ValueError("no corpus size given")
    return sizes




@dataclass
class BenchContext:
    settings: Settings
    embedder: object
    material: Material
    work: Path
    queries: int
    rounds: int
    log: Callable[[str], None]
    startup_runs: int = 3
    answer: bool = True
    env: dict = field(default_factory=dict)
    milvus_uri: str | None = None  # --backend milvus: every size is also searched through this Milvus
    keep: bool = False


def _answerer(retriever, settings: Settings, enabled: bool):
    if not enabled:
        return None, None
    try:
        from rag.answer.answering import ExtractiveAnswerer
    except ImportError:
        return None, None
    answerer = ExtractiveAnswerer(retriever, settings)
    started = time.perf_counter()
    answerer.warm_up()
    return answerer, round(time.perf_counter() - started, 3)


def _query_side(ctx: BenchContext, index_dir: Path, questions: list[str], query_vectors: np.ndarray,
                answer: bool, batch: bool = False) -> dict:
    """Load, latency, recall (and, with ``batch``, `rag batch`'s throughput) of the index at ``index_dir``."""
    from rag.index.store import load_index
    from rag.retrieve.retrieval import Retriever

    result: dict = {"load_fresh_process": probe_load(index_dir)}
    started = time.perf_counter()
    index = load_index(index_dir, ctx.embedder.model_id)
    result["load_seconds_in_process"] = round(time.perf_counter() - started, 3)
    result["dense"] = index.params.get("dense", {"type": "flat"})
    result["files_mb"] = index_files_mb(index_dir)
    retriever = Retriever(index, ctx.embedder, ctx.settings.model_copy(update={"index_dir": index_dir}))
    retriever.warm_up()
    answerer, warm = _answerer(retriever, retriever.settings, answer)
    if warm is not None:
        result["answer_warm_up_seconds"] = warm
    result["latency_ms"] = latency(retriever, questions, ctx.rounds, answerer)
    if answerer is not None and batch:
        result["batch"] = batch_throughput(retriever, answerer, questions, ctx.work, ctx.settings.threads)
    result["dense_only_search_ms"] = dense_search_latency(index.dense, query_vectors, max(ctx.settings.candidates, ctx.settings.top_k))
    result["recall"] = dense_recall(index, query_vectors)
    del retriever, index, answerer
    gc.collect()
    if ctx.milvus_uri:
        from rag.eval.bench.milvus import bench_milvus

        result["milvus"] = bench_milvus(ctx, index_dir, questions)
    return result


def bench_seeds(ctx: BenchContext) -> dict:
    """The seeds, indexed with the real embedder: build throughput against the bare embedder, queries."""
    from rag.index.build import build_index
    from rag.index.store import load_index

    folder = ctx.work / "seeds-articles"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(ctx.settings.seeds_dir, folder)
    settings = ctx.settings.model_copy(update={"index_dir": ctx.work / "seeds-index"})
    remove_index(settings.index_dir)
    from rag.ingest.chunking import chunk_articles, sentence_texts
    from rag.ingest.corpus import load_folder

    chunks = chunk_articles(load_folder(folder, settings.max_article_bytes)[0], settings.chunk_tokens,
                            settings.chunk_overlap, ctx.embedder.token_count)
    texts = [c.indexed_text for c in chunks]
    # The bare embedder does the same embedding work as the build: the passages and their distinct sentence windows.
    sentences = list(dict.fromkeys(t for c in chunks for t in sentence_texts(c, settings.sentence_window))) \
        if settings.sentence_vectors else []

    def bare() -> float:
        started = time.perf_counter()
        for batch in (texts, sentences):
            for i in range(0, len(batch), 16):
                ctx.embedder.embed_passages(batch[i:i + 16])
        return time.perf_counter() - started

    before = bare()  # the bare embedder right before and right after the build: load on a shared machine drifts
    started = time.perf_counter()
    report = build_index(folder, settings, ctx.embedder)
    build_seconds = time.perf_counter() - started
    after = bare()
    bare_seconds = (before + after) / 2
    index = load_index(settings.index_dir, ctx.embedder.model_id)
    assert len(index.chunks) == len(texts)
    tokens = sum(ctx.embedder.token_count(t) for t in texts)
    result = {"name": "seeds", "passages": len(texts), "articles": len(index.articles), "vectors": f"real ({ctx.embedder.model_id})",
              "build_path": "build_index on seeds/ (real embedder)",
              "build": {"seconds": round(build_seconds, 3), "passages_per_s": round(len(texts) / build_seconds, 2),
                        "tokens_per_s": round(tokens / build_seconds, 1), "tokens": tokens, "timings": report.timings},
              "bare_embedder": {"seconds": round(bare_seconds, 3), "passages_per_s": round(len(texts) / bare_seconds, 2),
                                "seconds_before_and_after_build": [round(before, 3), round(after, 3)],
                                "tokens_per_s": round(tokens / bare_seconds, 1)}}
    result["build"]["ratio_to_bare_embedder"] = round(result["build"]["passages_per_s"] / result["bare_embedder"]["passages_per_s"], 3)
    del index
    questions = _seed_questions(ctx.queries)
    vectors = ctx.embedder.embed_queries(questions)
    result.update(_query_side(ctx, settings.index_dir, questions, vectors, ctx.answer, batch=True))
    result["startup"] = startup(settings.index_dir, questions[0], ctx.startup_runs, ctx.env)
    result["incremental"] = incremental(ctx, folder, settings)
    shutil.rmtree(folder, ignore_errors=True)
    return result


def _seed_questions(limit: int) -> list[str]:
    path = project_root() / "eval" / "questions_de.jsonl"
    questions = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                if row.get("lang", "de") == "de" and row.get("question"):
                    questions.append(row["question"])
    questions = questions or ["Wie viel investiert Meta 2026?", "Wer ist Finanzchefin von Meta?"]
    return questions[:limit]


def _xquad_questions(material: Material, limit: int, seed: int = 7) -> tuple[list[str], np.ndarray]:
    rows = np.sort(np.random.default_rng(seed).choice(len(material.questions), size=min(limit, len(material.questions)), replace=False))
    return [material.questions[i] for i in rows], material.question_vectors[rows]


def incremental(ctx: BenchContext, folder: Path, settings: Settings) -> dict:
    """Add one new article to ``folder`` with the real embedder, remove it again, re-index the unchanged folder."""
    from rag.index.build import build_index

    _, text, _ = synthetic_article(ctx.material, 9_999_999, np.random.default_rng(99))
    new = folder / "zz_new_article.txt"
    new.write_text(text, encoding="utf-8")
    ctx.embedder.embed_passages(["warm-up"])
    try:
        added = build_index(folder, settings, ctx.embedder)
    finally:
        new.unlink()
    again = build_index(folder, settings, ctx.embedder)
    unchanged = build_index(folder, settings, ctx.embedder)
    embed_seconds = added.timings.get("embed", 0.0) + added.timings.get("sentences", 0.0)  # passages + sentences
    return {"add_one_article": {"seconds": added.seconds, "embedded": added.embedded, "reused": added.reused,
                                "embed_seconds": round(embed_seconds, 3),
                                "overhead_seconds": round(added.seconds - embed_seconds, 3), "timings": added.timings},
            "remove_it": {"seconds": again.seconds, "embedded": again.embedded, "removed": again.removed,
                          "passages": again.chunks},
            "unchanged": {"seconds": unchanged.seconds, "embedded": unchanged.embedded, "up_to_date": unchanged.up_to_date}}


def bench_synthetic(ctx: BenchContext, name: str, passages: int) -> dict:
    from rag.index.build import build_index
    from rag.index.dense import build_dense
    from rag.index.store import BM25_PARAMS, FORMAT_VERSION, chunking_params
    from rag.index.writing import write_index
    from rag import __version__

    index_dir = ctx.work / f"index-{name}"
    remove_index(index_dir)
    settings = ctx.settings.model_copy(update={"index_dir": index_dir})
    result: dict = {"name": name, "target_passages": passages, "vectors": f"synthetic (real XQuAD-de paragraph vectors mixed by sentence origin + noise {NOISE}, re-normalised)"}
    gc.collect()
    reset_peak()
    rss_before = rss_mb()
    if passages <= FOLDER_MAX:
        folder = ctx.work / f"articles-{name}"
        shutil.rmtree(folder, ignore_errors=True)
        started = time.perf_counter()
        write_synthetic_folder(ctx.material, folder, passages, settings)
        result["generate_seconds"] = round(time.perf_counter() - started, 2)
        embedder = SyntheticEmbedder(ctx.material, ctx.embedder.model_id)
        started = time.perf_counter()
        report = build_index(folder, settings, embedder)
        seconds = time.perf_counter() - started
        result["build_path"] = "build_index on a folder of .txt files (reading, chunking, BM25, dense, writing; synthetic embedder)"
        result["articles"], result["passages"] = report.articles, report.chunks
        timings = dict(report.timings)
        synthetic_embed = timings.get("embed", 0.0) + timings.get("sentences", 0.0)
    else:
        folder = None
        started = time.perf_counter()
        articles, chunks, vectors = synthetic_records(ctx.material, passages)
        result["generate_seconds"] = round(time.perf_counter() - started, 2)
        started = time.perf_counter()
        dense, info = build_dense(vectors, vectors.shape[1], settings, log=ctx.log)
        dense_seconds = time.perf_counter() - started
        params = {"format_version": FORMAT_VERSION, "package_version": __version__,
                  "embedder": {"id": ctx.embedder.model_id, "dim": int(vectors.shape[1])},
                  "chunking": chunking_params(settings), "bm25": BM25_PARAMS, "dense": info,
                  "corpus": {a.doc_id: a.sha256 for a in articles}, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        write_index(index_dir, params, articles, chunks, vectors, dense=dense)
        seconds = time.perf_counter() - started
        result["build_path"] = "write_index from in-memory synthetic chunks (BM25 tokenising, dense index, writing; no file reading or chunking)"
        result["articles"], result["passages"] = len(articles), len(chunks)
        timings = {"dense": round(dense_seconds, 3), "tokens_bm25_write": round(seconds - dense_seconds, 3)}
        synthetic_embed = 0.0
        chars = sum(len(c.indexed_text) for c in chunks)
        del articles, chunks, vectors, dense
        gc.collect()
    non_embedding = seconds - synthetic_embed
    if folder is not None:
        from rag.index.store import load_index

        chars = sum(len(c.indexed_text) for c in load_index(index_dir, verify=False).chunks)
    tokens = int(chars / ctx.material.chars_per_token)
    result["build"] = {"seconds": round(seconds, 2), "synthetic_embedding_seconds": round(synthetic_embed, 2),
                       "seconds_without_embedding": round(non_embedding, 2),
                       "passages_per_s_without_embedding": round(result["passages"] / max(non_embedding, 1e-9), 1),
                       "tokens_estimated": tokens,
                       "tokens_per_s_without_embedding": round(tokens / max(non_embedding, 1e-9), 1),
                       "timings": timings, "peak_rss_mb": round(rss_mb("VmHWM"), 1),
                       "rss_before_mb": round(rss_before, 1)}
    questions, vectors = _xquad_questions(ctx.material, ctx.queries)
    result.update(_query_side(ctx, index_dir, questions, vectors, ctx.answer and passages <= ANSWER_MAX))
    result["startup"] = startup(index_dir, questions[0], 1, ctx.env)
    if COMPARE_ANN[0] <= result["passages"] <= COMPARE_ANN[1]:
        from rag.index.store import load_index

        result["ann_comparison"] = ann_comparison(load_index(index_dir, verify=False), vectors, ctx.settings, ctx.log)
    if folder is not None and passages <= INCREMENTAL_MAX:
        result["incremental"] = incremental(ctx, folder, settings)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
    result["peak_rss_mb"] = round(rss_mb("VmHWM"), 1)
    return result





def run_bench(sizes: list[tuple[str, int]], settings: Settings, out: Path, queries: int = 100, rounds: int = 2,
              work_dir: Path | None = None, keep: bool = False, log: Callable[[str], None] = print,
              answer: bool = True, startup_runs: int = 3, material_paragraphs: int | None = None,
              indexing_paragraphs: int = 0) -> dict:
    """Run the benchmark for ``sizes`` and write ``out``.json/.md/.png; returns the result.

    ``indexing_paragraphs`` > 0 first compares the embedding backends' indexing throughput (issue 16).
    ``settings.backend == "milvus"``: every size is also searched through Milvus at ``settings.milvus_uri`` (default:
    a Milvus Lite file in the work folder) next to FAISS (issue 17); the bench's own indexes stay FAISS folders."""
    import faiss

    from rag.retrieve.embedding import make_embedder

    faiss.omp_set_num_threads(settings.threads)
    embedder = make_embedder(settings)
    embedder.embed_queries(["warm-up"])
    cache_dir = Path(settings.llm_cache_dir) / "bench"
    material = load_material(embedder, cache_dir, log, material_paragraphs)
    work = Path(work_dir or tempfile.mkdtemp(prefix="rag-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, RAG_THREADS=str(settings.threads))
    milvus_uri = (settings.milvus_uri or str(work / "bench.db")) if settings.backend == "milvus" else None
    settings = settings.model_copy(update={"backend": None, "milvus_uri": None, "milvus_collection": None})
    ctx = BenchContext(settings, embedder, material, work, queries, rounds, log, startup_runs, answer, env,
                       milvus_uri, keep)
    result = {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine_info(settings), "sizes": [],
              "method": {"noise": NOISE, "folder_max_passages": FOLDER_MAX, "queries_per_size": queries,
                         "rounds": rounds, "floor": "bare embedder query call + bare FAISS search (k = top_k) of the same question",
                         "synthetic": method_text()}}
    started = time.perf_counter()
    try:
        if indexing_paragraphs:
            result["indexing"] = bench_indexing(settings, work, indexing_paragraphs, log=log)
        for name, passages in sizes:
            log(f"bench: {name} …")
            load_before = load_average()
            t0 = time.perf_counter()
            entry = bench_seeds(ctx) if passages == 0 else bench_synthetic(ctx, name, passages)
            entry["seconds"] = round(time.perf_counter() - t0, 1)
            entry["load_average"] = {"before": load_before, "after": load_average()}
            result["sizes"].append(entry)
            result["targets"] = check_targets(result)
            result["seconds"] = round(time.perf_counter() - started, 1)
            write_reports(result, Path(out))  # after every size, so a long run leaves its numbers behind
            log(f"bench: {name} done in {entry['seconds']:.0f} s: retrieval p50 {entry['latency_ms']['retrieval']['p50']:.1f} ms, "
                f"ratio to floor {entry['latency_ms']['ratio_to_floor_p50']:.2f}")
            if not keep:
                remove_index(work / f"index-{name}")
    finally:
        if not keep and work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["targets"] = check_targets(result)
    write_reports(result, Path(out))
    return result
