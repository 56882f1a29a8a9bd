"""The evaluation suite behind `rag eval`: datasets × configurations → metrics, sweep, regression check.

Datasets
  ``xquad``         XQuAD-de as paragraph retrieval (240 one-paragraph articles, 1190 questions),
                    split by article into a tuning half and a held-out half (see ``rag.eval.xquad``);
                    answers on the held-out half and abstention on removed articles (``rag.eval.xquad_answers``).
  ``questions_de``  the German eval set over the seed articles (``eval/questions_de.jsonl``):
                    retrieval metrics over its answerable questions and answer/citation/abstention
                    metrics per answerer (``rag.eval.answers``).
  ``questions_de_heldout``  40 questions over the seeds written after the answerer was built
                    (``eval/questions_de_heldout.jsonl``): the same measures; nobody tunes on them.

Configurations (one table row each)
  ``dense``, ``bm25``, ``hybrid``  ``Retriever.run`` in that mode with the current settings;
  ``hybrid-passages``              hybrid without the two sentence signals (passage vectors 0.7, BM25 0.3:
                                   the fusion before sentence vectors were added);
  ``hybrid-no-coverage``           hybrid without sentence coverage (passage vectors 0.7, sentence vectors
                                   0.3, BM25 0.3: the fusion before coverage was added);
  ``rrf``                          reciprocal-rank fusion of the passage-vector and BM25 lists, equal
                                   weights, instead of z-scores (same candidates, same diversification);
  ``hybrid+rerank``                only when ``settings.reranker`` names a model;
  ``extractive``/``llm``/``server`` answerers on ``questions_de`` (hybrid retrieval inside).

Honest tuning: the sweep over the fusion weights, the same-article penalty and
the candidate depth picks its values on the *tuning* half of XQuAD-de only; the
held-out half is reported for every point but never used to choose.

Follow-up questions of the eval set are retrieved and answered with their
``standalone`` rewrite (single-turn pipeline: conversation handling is not
measured here).
"""

from __future__ import annotations

import contextlib
import json
import platform
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from rag.retrieve import retrieval as retrieval_module
from rag.errors import RagError
from rag.index.dates import DateRange
from rag.eval.metrics import (RETRIEVAL_METRICS, doc_ranking, evidence_metrics,
                         latency_summary, retrieval_metrics)
from rag.retrieve.retrieval import Retriever
from rag.settings import Settings, project_root
from rag.eval.answer_runs import ANSWER_CONFIGS, answer_runs, open_retriever
from rag.eval.datasets import (EvalOptions, EvalQuestion, eval_dir, load_questions_de, load_xquad_questions,
                               score_splits, wants)
from rag.eval.xquad_answers import evaluate_answers

RETRIEVAL_CONFIGS = ("dense", "bm25", "hybrid", "hybrid-passages", "hybrid-no-coverage", "rrf", "hybrid+rerank")
ALL_CONFIGS = RETRIEVAL_CONFIGS + ANSWER_CONFIGS
K = 10
RRF_K = 60
RRF_WEIGHTS = {"dense_weight": 0.5, "sentence_weight": 0.0, "bm25_weight": 0.5, "coverage_weight": 0.0}
SWEEP_DEPTH = 200
SWEEP_GRID = {
    "dense_weight": [round(0.1 * i, 1) for i in range(11)],
    "sentence_weight": [round(0.1 * i, 1) for i in range(11)],
    "bm25_weight": [0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5],
    "coverage_weight": [round(0.1 * i, 1) for i in range(11)],
    "same_article_penalty": [0.0, 0.25, 0.5, 1.0, 2.0],
    "candidates": [10, 20, 50, 100, 200],
}
SELECTION = ("mrr@10", "recall@1", "recall@5")
# A setting replaces the current one only if it gains at least this much MRR@10 on the tuning half
# (one question moving from rank 2 to rank 1 among 632 is worth 0.0008): smaller gains are noise.
MIN_GAIN = 0.002
QUICK_ARTICLES = (0, 24)
TOLERANCE = 0.02
# Metrics the regression guard compares (higher is better, but for LOWER_IS_BETTER); latency is reported, never guarded.
LOWER_IS_BETTER = {"false_abstention", "ece", "ece_incl_removed"}
GUARDED = set(RETRIEVAL_METRICS) | LOWER_IS_BETTER | {
    "evidence_hit@1", "evidence_hit@3", "evidence_hit@5", "evidence_recall@5", "answer_correctness",
    "citation_precision", "citation_validity", "abstention_precision", "abstention_recall", "contains_gold",
    "short_exact", "short_f1", "short_correct", "short_verbatim", "gold_citation", "abstention", "removed_declined"}


# --- running a retriever -----------------------------------------------------


class RecordingRetriever(Retriever):
    """A retriever that records each question's dense and BM25 candidates and can replay them.

    Recording fetches ``depth`` candidates (and hands ``run`` the top ``n`` it asked
    for), so a sweep over fusion settings and candidate depths re-runs the real
    ``Retriever.run`` code without embedding any question twice.
    """

    def __init__(self, base: Retriever, depth: int = SWEEP_DEPTH) -> None:
        super().__init__(base.index, base.embedder, base.settings, base.reranker, base.store)
        self.depth = depth
        self.replay = False
        # question → (how many candidates were asked for, {row: score} best first)
        self._dense: dict[str, tuple[int, dict[int, float]]] = {}
        self._lexical: dict[str, tuple[int, dict[int, float]]] = {}
        self._vectors: dict[str, np.ndarray] = {}

    def query_vector(self, question: str) -> np.ndarray:
        if not (self.replay and question in self._vectors):
            self._vectors[question] = super().query_vector(question)
        return self._vectors[question]

    def _cached(self, cache: dict, search: Callable[[str, int], dict[int, float]], question: str,
                n: int) -> dict[int, float]:
        if not (self.replay and question in cache and cache[question][0] >= n):
            size = max(n, self.depth)
            cache[question] = (size, search(question, size))
        return dict(list(cache[question][1].items())[:n])

    def dense_search(self, question: str, n: int, dates: DateRange | None = None) -> dict[int, float]:
        if dates is not None:  # a date range is not recorded (the sweeps do not use one)
            return super().dense_search(question, n, dates)
        return self._cached(self._dense, super().dense_search, question, n)

    def bm25_search(self, question: str, n: int, dates: DateRange | None = None) -> dict[int, float]:
        if dates is not None:
            return super().bm25_search(question, n, dates)
        return self._cached(self._lexical, super().bm25_search, question, n)

    @contextlib.contextmanager
    def configured(self, replay: bool = True, fusion: Callable | None = None, **overrides):
        """Temporarily other settings (``dense_weight=…``), replay mode and/or another fusion function."""
        saved = (self.settings, self.replay)
        self.settings = self.settings.model_copy(update=overrides)
        self.replay = replay
        patch = contextlib.nullcontext() if fusion is None else _patched_fusion(fusion)
        try:
            with patch:
                yield self
        finally:
            self.settings, self.replay = saved


@contextlib.contextmanager
def _patched_fusion(fusion: Callable):
    original = retrieval_module.fuse
    retrieval_module.fuse = fusion
    try:
        yield
    finally:
        retrieval_module.fuse = original


def rrf_fuse(columns: Sequence[tuple[Mapping[int, float], float]], k: int = RRF_K) -> list[tuple[int, float]]:
    """Reciprocal-rank fusion with the signature of ``rag.retrieve.retrieval.fuse``, best first (ties by row).

    score(row) = Σ w · 1/(k + rank), ranks from 1 within each column; a row missing from a
    column gets nothing from it. The ablation uses the plain form: passage vectors and BM25,
    equal weights.
    """
    fused: dict[int, float] = {}
    for scores, weight in columns:
        if not weight:
            continue
        for rank, row in enumerate(sorted(scores, key=lambda r: (-scores[r], r)), start=1):
            fused[row] = fused.get(row, 0.0) + weight / (k + rank)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))


# Ablations replayed from the hybrid run's recorded candidates: name → (fusion function or None, weights, note).
REPLAYED = {
    "rrf": (rrf_fuse, RRF_WEIGHTS, f"reciprocal-rank fusion, k={RRF_K}, equal weights, same candidates"),
    "hybrid-passages": (None, {"dense_weight": 0.7, "sentence_weight": 0.0, "bm25_weight": 0.3, "coverage_weight": 0.0},
                        "no sentence signals: passage vectors 0.7, BM25 0.3"),
    "hybrid-no-coverage": (None, {"dense_weight": 0.7, "sentence_weight": 0.3, "bm25_weight": 0.3, "coverage_weight": 0.0},
                           "no sentence coverage: passage vectors 0.7, sentence vectors 0.3, BM25 0.3"),
}


@dataclass
class RunResult:
    """What one configuration retrieved: doc rankings per question and per-question latency."""

    ranked: dict[str, list[str]]
    latencies: list[float] = field(default_factory=list)
    passages: dict[str, list[tuple[str, int, int]]] = field(default_factory=dict)


def run_retrieval(retriever: Retriever, questions: Sequence[EvalQuestion], mode: str, k: int = K,
                  progress: bool = False, desc: str = "") -> RunResult:
    """Every question through ``retriever.run``; latency is the wall time of each call."""
    from tqdm import tqdm

    ranked, latencies, passages = {}, [], {}
    for q in tqdm(questions, desc=desc or mode, unit="q", disable=not progress, leave=False):
        started = time.perf_counter()
        hits = retriever.run(q.query, k=k, mode=mode)
        latencies.append(time.perf_counter() - started)
        ranked[q.id] = doc_ranking(h.doc_id for h in hits)
        passages[q.id] = [(h.doc_id, h.start, h.end) for h in hits]
    return RunResult(ranked, latencies, passages)


def gold_ranks(questions: Sequence[EvalQuestion], ranked: Mapping[str, Sequence[str]]) -> dict[str, int | None]:
    """1-based rank of the first gold document (None: not in the list)."""
    out = {}
    for q in questions:
        docs = list(ranked.get(q.id, ()))
        out[q.id] = next((i + 1 for i, d in enumerate(docs) if d in q.gold_docs), None)
    return out


def score_batch_output(answers_path: Path, questions: Sequence[EvalQuestion],
                       splits: Sequence[str] = ("all", "tune", "heldout")) -> dict[str, dict]:
    """Retrieval metrics of a ``rag batch`` output file (``.jsonl`` answer objects) against gold documents.

    Lines are matched by ``id``; a question without an output line scores 0.
    """
    ranked = {}
    path = Path(answers_path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise RagError(f"The batch output {path} cannot be read ({err.strerror}).") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            ranked[str(record["id"])] = doc_ranking(r["doc_id"] for r in record.get("retrieved") or [])
        except (json.JSONDecodeError, KeyError, TypeError):
            raise RagError(f"{path.name}, line {number}: not an answer object of `rag batch`.") from None
    present = [s for s in splits if s == "all" or any(q.split == s for q in questions)]
    return score_splits(questions, ranked, present)


# --- tuning sweep ------------------------------------------------------------


def _selection_key(scores: Mapping[str, float]) -> tuple:
    return tuple(round(scores[m], 6) for m in SELECTION)


def sweep(retriever: RecordingRetriever, questions: Sequence[EvalQuestion], progress: bool = False,
          grid: Mapping[str, Sequence] = SWEEP_GRID, min_gain: float = MIN_GAIN) -> dict:
    """Coordinate-wise sweep of ``grid`` (in its order), choosing on the tuning half only.

    Each parameter is swept with the others at their current best; the value
    with the best (MRR@10, Recall@1, Recall@5) on ``tune`` replaces the current
    one only if its MRR@10 is at least ``min_gain`` higher. Every point also
    carries its held-out scores, for the report; they never influence the choice.
    """
    from tqdm import tqdm

    tune = [q for q in questions if q.split == "tune"]
    if not tune:
        raise RagError("The sweep needs questions of the tuning half.")
    best = {name: getattr(retriever.settings, name) for name in grid}
    defaults = dict(best)
    points = []
    total = sum(len(v) for v in grid.values())
    with tqdm(total=total, desc="sweep", unit="setting", disable=not progress, leave=False) as bar:
        for name, values in grid.items():
            scored = []
            for value in values:
                setting = dict(best, **{name: value})
                with retriever.configured(replay=True, **setting):
                    run = run_retrieval(retriever, questions, "hybrid")
                splits = score_splits(questions, run.ranked, ("tune", "heldout"))
                points.append({"parameter": name, "value": value, "setting": setting, **splits})
                scored.append((value, splits["tune"]))
                bar.update(1)
            current = next((s for v, s in scored if v == best[name]), None)
            top_value, top_scores = max(scored, key=lambda item: _selection_key(item[1]))
            if current is None or top_scores[SELECTION[0]] >= current[SELECTION[0]] + min_gain - 1e-12:
                best[name] = top_value
    with retriever.configured(replay=True, **best):
        tuned = run_retrieval(retriever, questions, "hybrid")
    return {"grid": {k: list(v) for k, v in grid.items()}, "selection": list(SELECTION), "min_gain": min_gain,
            "defaults": defaults,
            "chosen": best, "changed": {k: v for k, v in best.items() if v != defaults[k]},
            "points": points, "tuned": score_splits(questions, tuned.ranked, ("all", "tune", "heldout")),
            "tuned_ranked": tuned.ranked}


# --- whole evaluation --------------------------------------------------------


def _run_modes(retriever: RecordingRetriever, questions: Sequence[EvalQuestion], options: EvalOptions,
               label: str) -> dict[str, RunResult]:
    """``dense``/``bm25``/``hybrid`` runs (those wanted), in that order.

    ``hybrid`` runs first and records both candidate lists. A full run times
    ``dense`` and ``bm25`` afresh; a quick run replays them from the recording
    (each question is embedded once; their latency is then not measured).
    """
    runs = {}
    for mode in ("hybrid", "dense", "bm25"):
        if wants(options, mode):
            replay = options.quick and mode != "hybrid"
            with retriever.configured(replay=replay):
                run = run_retrieval(retriever, questions, mode, progress=options.progress, desc=f"{label} {mode}")
            runs[mode] = RunResult(run.ranked, [] if replay else run.latencies, run.passages)
    return {mode: runs[mode] for mode in ("dense", "bm25", "hybrid") if mode in runs}


def _replayed_runs(retriever: RecordingRetriever, questions: Sequence[EvalQuestion], options: EvalOptions,
                   label: str) -> dict[str, RunResult]:
    """The ablations of ``REPLAYED`` (those wanted), re-run from the recorded candidates (no latency of their own)."""
    runs = {}
    for name, (fusion, weights, _) in REPLAYED.items():
        if wants(options, name):
            with retriever.configured(replay=True, fusion=fusion, **weights):
                runs[name] = run_retrieval(retriever, questions, "hybrid", progress=options.progress,
                                           desc=f"{label} {name}")
    return runs


def _seeds_retriever(settings: Settings, options: EvalOptions, gold: set[str], log, progress, embedder=None) -> Retriever:
    """The seeds index (``settings.index_dir`` unless told otherwise), built or updated only if it holds the seeds."""
    from rag.ingest.corpus import load_folder
    from rag.retrieve.embedding import make_embedder
    from rag.index.store import load_index

    path = Path(options.seeds_index or settings.index_dir)
    seeds = Path(settings.seeds_dir)
    seed_ids = {a.doc_id for a in load_folder(seeds, settings.max_article_bytes)[0]}
    params = path / "params.json"
    if params.exists():
        try:
            corpus = set(json.loads(params.read_text(encoding="utf-8")).get("corpus", {}))
        except (OSError, json.JSONDecodeError):
            corpus = set()
        if corpus and corpus != seed_ids:
            embedder = embedder or make_embedder(settings)
            retriever = Retriever(load_index(path, embedder.model_id), embedder, settings.model_copy(update={"index_dir": path}))
            missing = gold - set(retriever.index.articles)
            if missing:
                raise RagError(f"The index at {path} does not hold the seed articles the eval set asks about "
                               f"({len(missing)} missing); run `rag index` on seeds/ or pass another index.")
            retriever.warm_up()
            return retriever
    return open_retriever(path, settings, seeds, log, progress, embedder)


def _shown(path: Path) -> str:
    """A path as the report shows it: relative to the checkout when inside it."""
    try:
        return str(Path(path).resolve().relative_to(project_root().resolve()))
    except ValueError:
        return str(path)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=project_root(), capture_output=True,
                             text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=project_root(),
                               capture_output=True, text=True, timeout=5)
        return (out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")) or None
    except (OSError, subprocess.SubprocessError):
        return None


def _settings_summary(settings: Settings) -> dict:
    keys = ("embedder", "chunk_tokens", "chunk_overlap", "top_k", "candidates", "dense_weight", "sentence_weight",
            "bm25_weight", "coverage_weight", "coverage_candidates", "sentence_vectors", "same_article_penalty",
            "reranker", "rerank_top", "threads")
    return {k: getattr(settings, k) for k in keys}


def _xquad_paths(options: EvalOptions) -> tuple[Path, Path, Path]:
    """(paragraph folder, question file, index folder), preparing the files from the XQuAD JSON."""
    from rag.eval.xquad import default_workdir, load_xquad, prepare, write_articles

    workdir = Path(options.xquad_workdir or default_workdir())
    prepared = prepare(options.xquad_source, workdir)
    if not options.quick:
        return prepared.paragraph_dir, prepared.questions, Path(options.xquad_index or project_root() / "index" / "xquad-de")
    paragraphs, questions = load_xquad(options.xquad_source)
    keep = {p.doc_id for p in paragraphs if p.article in QUICK_ARTICLES}
    quick = workdir / "quick"
    folder = write_articles(quick / "paragraphs", {p.doc_id: p.text for p in paragraphs if p.doc_id in keep})
    lines = [json.dumps(asdict(q), ensure_ascii=False) + "\n" for q in questions if q.gold_docs[0] in keep]
    (quick / "questions.jsonl").write_text("".join(lines), encoding="utf-8")
    index = Path(options.xquad_index or project_root() / "index" / "xquad-de-quick")
    return folder, quick / "questions.jsonl", index


def evaluate_xquad(settings: Settings, options: EvalOptions, log: Callable[[str], None] = lambda m: None,
                   embedder=None) -> dict:
    """Retrieval configurations on XQuAD-de, with tune / held-out / all tables, sweep and misses; answers on the
    held-out half (full run)."""
    folder, question_file, index_dir = _xquad_paths(options)
    questions = load_xquad_questions(question_file)
    base = open_retriever(index_dir, settings, folder, log, options.progress, embedder)
    retriever = RecordingRetriever(base)
    configs, notes, samples = {}, [], {}
    splits = ("all", "tune", "heldout")
    runs = _run_modes(retriever, questions, options, "xquad")
    for mode, run in runs.items():
        configs[mode] = {**score_splits(questions, run.ranked, splits), "latency": latency_summary(run.latencies)}
        samples[mode] = run.latencies
    for name, run in _replayed_runs(retriever, questions, options, "xquad").items():
        configs[name] = {**score_splits(questions, run.ranked, splits), "latency": latency_summary([]),
                         "note": REPLAYED[name][2]}
    if wants(options, "hybrid+rerank"):
        if settings.reranker:
            reranking = Retriever(base.index, base.embedder, base.settings)
            reranking.warm_up()
            run = run_retrieval(reranking, questions, "hybrid", progress=options.progress, desc="xquad rerank")
            configs["hybrid+rerank"] = {**score_splits(questions, run.ranked, splits), "latency": latency_summary(run.latencies)}
            samples["hybrid+rerank"] = run.latencies
        else:
            notes.append("hybrid+rerank skipped: no reranker configured (settings.reranker).")
    result = {"index": _shown(index_dir), "paragraphs": len(base.index.articles), "passages": len(base.index.chunks),
              "questions": len(questions), "splits": {s: sum(1 for q in questions if s == "all" or q.split == s) for s in splits},
              "configs": configs, "notes": notes, "_samples": samples}
    if "hybrid" in runs:
        ranks = gold_ranks(questions, runs["hybrid"].ranked)
        by_id = {q.id: q for q in questions}
        result["misses"] = [{"id": qid, "split": by_id[qid].split, "question": by_id[qid].question,
                             "gold": by_id[qid].gold_docs[0], "rank": rank, "top": runs["hybrid"].ranked[qid][:3]}
                            for qid, rank in ranks.items() if rank != 1]
    if not options.quick:
        result["answers"], answer_notes, answer_samples = evaluate_answers(base, settings, options, questions, log,
                                                                           embedder)
        notes += answer_notes
        samples.update(answer_samples)
    if options.sweep and not options.quick and wants(options, "hybrid"):
        swept = sweep(retriever, questions, progress=options.progress)
        swept.pop("tuned_ranked")
        result["sweep"] = swept
        if swept["changed"]:
            configs["hybrid (tuned)"] = {**swept["tuned"], "latency": latency_summary([]),
                                         "note": "values chosen on the tuning half: " + ", ".join(
                                             f"{k}={v}" for k, v in swept["changed"].items())}
    return result


def evaluate_questions_de(settings: Settings, options: EvalOptions, log: Callable[[str], None] = lambda m: None,
                          embedder=None, path: Path | None = None) -> dict:
    """Retrieval configurations and answerers on the German eval set over the seeds (``path``: another set in
    its format, e.g. the held-out questions)."""
    questions = load_questions_de(path or options.questions_de)
    gold = {d for q in questions for d in q.gold_docs}
    base = _seeds_retriever(settings, options, gold, log, options.progress, embedder)
    missing = gold - set(base.index.articles)
    if missing:
        raise RagError(f"The seeds index lacks {len(missing)} article(s) the eval set names: {sorted(missing)[:3]}.")
    retriever = RecordingRetriever(base)
    configs, notes, samples = {}, [], {}
    answerable = [q for q in questions if q.answerable]
    articles = {doc_id: a.text for doc_id, a in base.index.articles.items()}

    def passage_scores(run: RunResult) -> dict:
        return evidence_metrics([(run.passages.get(q.id, []), q.gold_docs, q.evidence) for q in answerable], articles)

    for mode, run in _run_modes(retriever, questions, options, "questions_de").items():
        scores = score_splits(questions, run.ranked)
        scores["all"].update(passage_scores(run))
        configs[mode] = {**scores, "latency": latency_summary(run.latencies), "by_type": _by_type(answerable, run.ranked)}
        samples[mode] = run.latencies
    for name, run in _replayed_runs(retriever, questions, options, "questions_de").items():
        scores = score_splits(questions, run.ranked)
        scores["all"].update(passage_scores(run))
        configs[name] = {**scores, "latency": latency_summary([])}
    if wants(options, "hybrid+rerank"):
        if settings.reranker:
            reranking = Retriever(base.index, base.embedder, base.settings)
            reranking.warm_up()
            run = run_retrieval(reranking, questions, "hybrid", progress=options.progress, desc="questions_de rerank")
            scores = score_splits(questions, run.ranked)
            scores["all"].update(passage_scores(run))
            configs["hybrid+rerank"] = {**scores, "latency": latency_summary(run.latencies)}
            samples["hybrid+rerank"] = run.latencies
        else:
            notes.append("hybrid+rerank skipped: no reranker configured (settings.reranker).")
    answers = answer_runs(base, settings, questions, articles, options, notes, samples)
    return {"index": _shown(base.index.path), "articles": len(base.index.articles), "passages": len(base.index.chunks),
            "questions": len(questions), "answerable": len(answerable), "configs": configs, "answers": answers,
            "notes": notes, "_samples": samples}


def _by_type(questions: Sequence[EvalQuestion], ranked: Mapping[str, Sequence[str]]) -> dict:
    out = {}
    for kind in sorted({q.type for q in questions}):
        subset = [q for q in questions if q.type == kind]
        scores = retrieval_metrics({q.id: q.gold_docs for q in subset}, ranked, ("recall@5", "hit_rate@5", "mrr@10"))
        out[kind] = {**scores, "questions": len(subset)}
    return out


def result_header(settings: Settings, options: EvalOptions) -> dict:
    """What every evaluation result starts with (when, which commit, machine, settings); no datasets yet."""
    unknown = set(options.configs or ()) - set(ALL_CONFIGS)
    if unknown:
        raise RagError(f"Unknown configuration(s) {', '.join(sorted(unknown))}; choose from {', '.join(ALL_CONFIGS)}.")
    return {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "commit": _git_commit(), "quick": options.quick,
            "machine": {"python": platform.python_version(), "cpus": _cpus()},
            "settings": _settings_summary(settings), "datasets": {}}


def run_evaluation(settings: Settings, options: EvalOptions, log: Callable[[str], None] = lambda m: None,
                   embedder=None) -> dict:
    """Every requested dataset; the result is what ``report.write_report`` and ``flatten`` read."""
    started = time.perf_counter()
    result = result_header(settings, options)
    if "xquad" in options.datasets:
        result["datasets"]["xquad"] = evaluate_xquad(settings, options, log, embedder)
    if "questions_de" in options.datasets:
        result["datasets"]["questions_de"] = evaluate_questions_de(settings, options, log, embedder)
    if "questions_de_heldout" in options.datasets:
        result["datasets"]["questions_de_heldout"] = evaluate_questions_de(
            settings, options, log, embedder, options.questions_de_heldout or eval_dir() / "questions_de_heldout.jsonl")
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["flat"] = flatten(result)
    return result


def _cpus() -> int | None:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


# --- regression guard --------------------------------------------------------


def flatten(result: Mapping) -> dict[str, float]:
    """Guarded metrics as ``dataset/split/config/metric`` (answerers: ``questions_de/answer/<name>/<metric>``)."""
    flat = {}
    for dataset, data in result.get("datasets", {}).items():
        for config, rows in data.get("configs", {}).items():
            for split, scores in rows.items():
                if isinstance(scores, dict) and split not in ("latency", "by_type"):
                    for metric, value in scores.items():
                        if metric in GUARDED and value is not None:
                            flat[f"{dataset}/{split}/{config}/{metric}"] = round(float(value), 4)
        for name, scores in data.get("answers", {}).items():
            for metric, value in scores.items():
                if metric in GUARDED and value is not None:
                    flat[f"{dataset}/answer/{name}/{metric}"] = round(float(value), 4)
    return flat


@dataclass
class CheckResult:
    regressions: list[str]
    compared: int
    missing: list[str]

    @property
    def ok(self) -> bool:
        return not self.regressions


def check_against_baseline(flat: Mapping[str, float], baseline: Mapping[str, float],
                           tolerance: float = TOLERANCE) -> CheckResult:
    """Every baseline metric that this run measured must be at least ``baseline − tolerance``
    (at most ``baseline + tolerance`` for the ``LOWER_IS_BETTER`` ones: false abstention, calibration error)."""
    regressions, missing, compared = [], [], 0
    for key, expected in sorted(baseline.items()):
        if key not in flat:
            missing.append(key)
            continue
        compared += 1
        if key.rsplit("/", 1)[-1] in LOWER_IS_BETTER:
            if flat[key] > expected + tolerance + 1e-9:
                regressions.append(f"{key}: {flat[key]:.4f} > baseline {expected:.4f} + {tolerance:.2f}")
        elif flat[key] < expected - tolerance - 1e-9:
            regressions.append(f"{key}: {flat[key]:.4f} < baseline {expected:.4f} − {tolerance:.2f}")
    return CheckResult(regressions, compared, missing)


def baseline_path() -> Path:
    return eval_dir() / "baseline.json"


def read_baseline(path: Path | None = None) -> dict:
    path = Path(path or baseline_path())
    if not path.exists():
        raise RagError(f"There is no baseline at {path}; write one with `rag eval --update-baseline`.")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        raise RagError(f"The baseline {path} is not valid JSON.") from None


def update_baseline(result: Mapping, path: Path | None = None) -> Path:
    """Store this run's guarded metrics under ``quick`` or ``full`` (the other entry is kept)."""
    path = Path(path or baseline_path())
    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    key = "quick" if result.get("quick") else "full"
    data["tolerance"] = TOLERANCE
    data[key] = {"created": result.get("created"), "commit": result.get("commit"), "metrics": result["flat"]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    return path
