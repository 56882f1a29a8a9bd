"""The dense index: FAISS inner-product search over L2-normalised passage vectors, exact or approximate by size.

Why by size: up to ``exact_max_passages`` an exact ``IndexFlatIP`` is fast enough and loses nothing; above, an
IVF-Flat (or HNSW) index whose ``nprobe`` (``efSearch``) is tuned at build time until recall@10 against exact
search reaches ``ann_target_recall``, so quality is a setting, not a guess.
"""

from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np

from rag.settings import Settings

IVF_TRAIN_POINTS_PER_LIST = 50
IVF_TRAIN_ITERATIONS = 10
TUNE_QUERIES = 200
NPROBE_STEPS = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 1024)
EF_STEPS = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 1024)


def dense_kind(passages: int, settings: Settings | None) -> str:
    """``flat`` (exact) up to ``settings.exact_max_passages`` passages, else ``settings.ann_index``."""
    if settings is None or passages <= settings.exact_max_passages:
        return "flat"
    return settings.ann_index


def ann_recall(index, queries: np.ndarray, truth: np.ndarray, k: int = 10,
               exclude: np.ndarray | None = None) -> float:
    """Mean recall@k of ``index`` against exact neighbours ``truth`` (rows ``exclude[i]`` ignored: self-matches)."""
    _, found = index.search(queries, k + (exclude is not None))
    total = 0.0
    for i in range(len(queries)):
        expected = [r for r in truth[i] if exclude is None or r != exclude[i]][:k]
        got = {r for r in found[i] if exclude is None or r != exclude[i]}
        total += len(got.intersection(expected)) / max(len(expected), 1)
    return total / max(len(queries), 1)


def _tune(index, kind: str, vectors: np.ndarray, target: float, log: Callable[[str], None]) -> dict:
    """Smallest nprobe / efSearch whose recall@10 against exact search reaches ``target``.

    The tuning queries are midpoints of two random stored passages (re-normalised): they fall between
    topics, like real questions, whereas a stored passage as query finds its own cell and overstates recall
    (measured on XQuAD-de-based corpora: midpoints are slightly harder than real questions, so the chosen
    setting errs on the safe side).
    """
    import faiss

    rng = np.random.default_rng(0)
    count = min(TUNE_QUERIES, len(vectors))
    queries = vectors[rng.integers(len(vectors), size=count)] + vectors[rng.integers(len(vectors), size=count)]
    queries = np.ascontiguousarray(queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12), np.float32)
    _, truth = faiss.knn(queries, vectors, 10, metric=faiss.METRIC_INNER_PRODUCT)
    steps = [s for s in NPROBE_STEPS if s <= index.nlist] if kind == "ivf" else list(EF_STEPS)
    recall, value = 0.0, steps[-1]
    for value in steps:
        if kind == "ivf":
            index.nprobe = value
        else:
            index.hnsw.efSearch = value
        recall = ann_recall(index, queries, truth, 10)
        if recall >= target:
            break
    log(f"Approximate index tuned: {'nprobe' if kind == 'ivf' else 'efSearch'}={value}, recall@10 {recall:.3f} against exact search.")
    return {"nprobe" if kind == "ivf" else "ef_search": int(value), "tuned_recall_at_10": round(recall, 4),
            "tuning_queries": count}


def build_dense(vectors: np.ndarray, dim: int, settings: Settings | None = None, previous=None,
                log: Callable[[str], None] = lambda message: None) -> tuple[object, dict]:
    """A FAISS inner-product index over ``vectors`` chosen by size, and its description for ``params.json``.

    An IVF index re-uses the trained centroids of ``previous`` (the index being replaced) when their number
    is within 25 % of the one wanted, so an incremental update of a big index does not re-train.
    """
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n = len(vectors)
    kind = dense_kind(n, settings)
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(settings.threads if settings is not None else threads)  # training, adding, tuning
    try:
        return _build_dense(vectors, dim, kind, settings, previous, log)
    finally:
        faiss.omp_set_num_threads(threads)


def _build_dense(vectors: np.ndarray, dim: int, kind: str, settings: Settings | None, previous,
                 log: Callable[[str], None]) -> tuple[object, dict]:
    import faiss

    n = len(vectors)
    if kind == "flat":
        dense = faiss.IndexFlatIP(dim)
        if n:
            dense.add(vectors)
        return dense, {"type": "flat"}
    started = time.perf_counter()
    if kind == "hnsw":
        dense = faiss.IndexHNSWFlat(dim, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        dense.add(vectors)
        info = {"type": "hnsw", "m": settings.hnsw_m, "ef_construction": int(dense.hnsw.efConstruction)}
        if settings.hnsw_ef_search:  # an explicit setting wins over tuning
            dense.hnsw.efSearch = settings.hnsw_ef_search
            info["ef_search"] = settings.hnsw_ef_search
        else:
            info.update(_tune(dense, kind, vectors, settings.ann_target_recall, log))
        info["build_seconds"] = round(time.perf_counter() - started, 2)
        return dense, info
    nlist = max(1, min(int(round(4 * math.sqrt(n))), n // 39))  # faiss wants ≥ 39 training points a list
    reused = previous is not None and isinstance(previous, faiss.IndexIVF) and previous.d == dim \
        and abs(previous.nlist - nlist) <= 0.25 * nlist
    quantizer = faiss.IndexFlatIP(dim)
    if reused:
        nlist = previous.nlist
        quantizer.add(faiss.downcast_index(previous.quantizer).reconstruct_n(0, nlist))
    dense = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    if reused:
        dense.is_trained = True
    else:
        dense.cp.niter = IVF_TRAIN_ITERATIONS
        dense.cp.max_points_per_centroid = IVF_TRAIN_POINTS_PER_LIST
        dense.cp.seed = 1234
        dense.train(vectors)
    dense.add(vectors)
    dense.make_direct_map()
    info = {"type": "ivf", "nlist": int(nlist), "centroids_reused": bool(reused),
            "trained_on": int(min(n, nlist * IVF_TRAIN_POINTS_PER_LIST)) if not reused else 0}
    if settings.ann_nprobe:
        dense.nprobe = min(settings.ann_nprobe, nlist)
        info["nprobe"] = int(dense.nprobe)
    else:
        info.update(_tune(dense, kind, vectors, settings.ann_target_recall, log))
    info["build_seconds"] = round(time.perf_counter() - started, 2)
    return dense, info


# A filtered search of an approximate index that finds too few allowed rows scores up to this many rows exactly.
EXACT_FALLBACK_ROWS = 50_000


def new_dense_index(vectors: np.ndarray, dim: int):
    return build_dense(vectors, dim)[0]


def reconstruct(dense, rows: np.ndarray) -> np.ndarray:
    """Vectors of the given rows (IVF through its direct map, one row at a time in C++)."""
    out = np.empty((len(rows), dense.d), np.float32)
    for start in range(0, len(rows), 1 << 16):
        block = np.ascontiguousarray(rows[start:start + (1 << 16)], dtype=np.int64)
        out[start:start + len(block)] = dense.reconstruct_batch(block)
    return out


def search_within(dense, query: np.ndarray, n: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``dense.search`` restricted to ``rows`` (sorted row ids), so the ``n`` results are all allowed ones.

    Why not search then drop: a date range that holds 5 % of the archive would leave a top 100 with five
    passages. FAISS skips the other rows while it searches (an ``IDSelector``); an approximate index can still
    miss allowed rows outside the cells it probes, so when it returns fewer than ``n`` of a small allowed set,
    that set is scored exactly.
    """
    import faiss

    query = np.ascontiguousarray(query, np.float32).reshape(1, -1)
    n = min(n, len(rows))
    if n <= 0:
        return np.zeros((1, 0), np.float32), np.zeros((1, 0), np.int64)
    selector = faiss.IDSelectorBatch(np.ascontiguousarray(rows, np.int64))
    if isinstance(dense, faiss.IndexIVF):
        params = faiss.SearchParametersIVF(sel=selector, nprobe=dense.nprobe)
    elif isinstance(dense, faiss.IndexHNSW):
        params = faiss.SearchParametersHNSW(sel=selector, efSearch=dense.hnsw.efSearch)
    else:
        params = faiss.SearchParameters(sel=selector)
    scores, found = dense.search(query, n, params=params)
    if int((found[0] >= 0).sum()) < n and len(rows) <= EXACT_FALLBACK_ROWS:
        exact = reconstruct(dense, np.asarray(rows, np.int64)) @ query[0]
        order = np.lexsort((rows, -exact))[:n]
        return exact[order].reshape(1, -1), np.asarray(rows, np.int64)[order].reshape(1, -1)
    return scores, found
