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
held-out half is reported for every point but never used to choose. The runs, the
recorded candidates they replay and the sweep are ``rag.eval.retrieval_runs``.

Follow-up questions of the eval set are retrieved and answered with their
``standalone`` rewrite (single-turn pipeline: conversation handling is not
measured here).
"""

from __future__ import annotations

import json
import platform
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from rag.errors import RagError
from rag.eval.metrics import (RETRIEVAL_METRICS, doc_ranking, evidence_metrics,
                         latency_summary, retrieval_metrics)
from rag.retrieve.retrieval import Retriever
from rag.settings import Settings, project_root
from rag.eval.answer_runs import ANSWER_CONFIGS, ablation_runs, answer_runs, open_retriever
from rag.eval.datasets import (EvalOptions, EvalQuestion, eval_dir, load_questions_de, load_xquad_questions,
                               score_splits, wants)
from rag.eval.retrieval_runs import (REPLAYED, RecordingRetriever, RunResult, gold_ranks, replayed_runs, run_modes,
                                     run_retrieval, sweep)
from rag.eval.xquad_answers import evaluate_answers

RETRIEVAL_CONFIGS = ("dense", "bm25", "hybrid", "hybrid-passages", "hybrid-no-coverage", "rrf", "hybrid+rerank")
ALL_CONFIGS = RETRIEVAL_CONFIGS + ANSWER_CONFIGS
QUICK_ARTICLES = (0, 24)
TOLERANCE = 0.02
# Metrics the regression guard compares (higher is better, but for LOWER_IS_BETTER); latency is reported, never guarded.
LOWER_IS_BETTER = {"false_abstention", "ece", "ece_incl_removed", "small_false_abstention", "small_ece"}
GUARDED = set(RETRIEVAL_METRICS) | LOWER_IS_BETTER | {
    "evidence_hit@1", "evidence_hit@3", "evidence_hit@5", "evidence_recall@5", "answer_correctness",
    "citation_precision", "citation_validity", "abstention_precision", "abstention_recall", "contains_gold",
    "short_exact", "short_f1", "short_correct", "short_verbatim", "gold_citation", "abstention", "removed_declined",
    "near_declined", "missing_declined", "small_contains_gold", "small_declined"}


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


# --- whole evaluation --------------------------------------------------------


def _seeds_retriever(settings: Settings, options: EvalOptions, gold: set[str], log, progress, embedder=None) -> Retriever:
    """The seeds index (``settings.index_dir`` unless told otherwise), built or updated only if it holds the seeds."""
    from rag.ingest.corpus import load_folder
    from rag.retrieve.embedding import make_embedder
    from rag.index.milvus import open_store
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
            index = load_index(path, embedder.model_id)
            retriever = Retriever(index, embedder, settings.model_copy(update={"index_dir": path}),
                                  store=open_store(index.params))
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
    runs = run_modes(retriever, questions, options, "xquad")
    for mode, run in runs.items():
        configs[mode] = {**score_splits(questions, run.ranked, splits), "latency": latency_summary(run.latencies)}
        samples[mode] = run.latencies
    for name, run in replayed_runs(retriever, questions, options, "xquad").items():
        configs[name] = {**score_splits(questions, run.ranked, splits), "latency": latency_summary([]),
                         "note": REPLAYED[name][2]}
    if wants(options, "hybrid+rerank"):
        if settings.reranker:
            reranking = Retriever(base.index, base.embedder, base.settings, store=base.store)
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
        heldout = [q for q in questions if q.split == "heldout"]
        result["ablation"] = ablation_runs(base, settings, heldout, {d: a.text for d, a in base.index.articles.items()},
                                           options, span_gold=True, label="xquad")
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

    for mode, run in run_modes(retriever, questions, options, "questions_de").items():
        scores = score_splits(questions, run.ranked)
        scores["all"].update(passage_scores(run))
        configs[mode] = {**scores, "latency": latency_summary(run.latencies), "by_type": _by_type(answerable, run.ranked)}
        samples[mode] = run.latencies
    for name, run in replayed_runs(retriever, questions, options, "questions_de").items():
        scores = score_splits(questions, run.ranked)
        scores["all"].update(passage_scores(run))
        configs[name] = {**scores, "latency": latency_summary([])}
    if wants(options, "hybrid+rerank"):
        if settings.reranker:
            reranking = Retriever(base.index, base.embedder, base.settings, store=base.store)
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
            "ablation": ablation_runs(base, settings, questions, articles, options, label="questions_de"),
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
    result["sizes"] = flatten_sizes(result)
    return result


def _cpus() -> int | None:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


# --- regression guard --------------------------------------------------------


def flatten(result: Mapping) -> dict[str, float]:
    """Guarded metrics as ``dataset/split/config/metric`` (answerers: ``questions_de/answer/<name>/<metric>``, and
    XQuAD-de asked in English: ``xquad/answer/<name>/english/<metric>``)."""
    flat = {}
    for dataset, data in result.get("datasets", {}).items():
        for config, rows in data.get("configs", {}).items():
            for split, scores in rows.items():
                if isinstance(scores, dict) and split not in ("latency", "by_type"):
                    for metric, value in scores.items():
                        if metric in GUARDED and value is not None:
                            flat[f"{dataset}/{split}/{config}/{metric}"] = round(float(value), 4)
        for name, scores in data.get("answers", {}).items():
            for key, part in ((f"{dataset}/answer/{name}", scores),
                              (f"{dataset}/answer/{name}/english", scores.get("english") or {})):
                for metric, value in part.items():
                    if metric in GUARDED and value is not None:
                        flat[f"{key}/{metric}"] = round(float(value), 4)
    return flat


# The count of questions an answer metric averages over, by metric (any other: the answerable questions).
_ANSWER_DENOMINATORS = {"abstention": "unanswerable", "abstention_recall": "unanswerable",
                        "abstention_precision": "abstained", "citation_precision": "answered",
                        "removed_declined": "removed_questions", "near_declined": "near_questions",
                        "missing_declined": "missing_questions", "small_declined": "small_unanswerable",
                        "small_contains_gold": "small_questions", "small_false_abstention": "small_questions"}


def flatten_sizes(result: Mapping) -> dict[str, int]:
    """For each key of ``flatten``, how many questions its metric averages over (where the result says)."""
    sizes = {}
    for dataset, data in result.get("datasets", {}).items():
        for config, rows in data.get("configs", {}).items():
            for split, scores in rows.items():
                if isinstance(scores, dict) and split not in ("latency", "by_type") and scores.get("questions"):
                    for metric in scores:
                        sizes[f"{dataset}/{split}/{config}/{metric}"] = int(scores["questions"])
        for name, scores in data.get("answers", {}).items():
            for key, part in ((f"{dataset}/answer/{name}", scores),
                              (f"{dataset}/answer/{name}/english", scores.get("english") or {})):
                for metric in part:
                    denominator = _ANSWER_DENOMINATORS.get(metric, "answerable")
                    n = part.get(denominator) or (scores.get(denominator) if part is scores else part.get("questions"))
                    if isinstance(n, int) and n > 0:
                        sizes[f"{key}/{metric}"] = n
    return {key: n for key, n in sizes.items() if key in flatten(result)}


@dataclass
class CheckResult:
    regressions: list[str]
    compared: int
    missing: list[str]

    @property
    def ok(self) -> bool:
        return not self.regressions


def check_against_baseline(flat: Mapping[str, float], baseline: Mapping[str, float],
                           tolerance: float = TOLERANCE, sizes: Mapping[str, int] | None = None) -> CheckResult:
    """Every baseline metric that this run measured must be at least ``baseline − tolerance``
    (at most ``baseline + tolerance`` for the ``LOWER_IS_BETTER`` ones: false abstention, calibration error), the
    tolerance widened by one question's share where ``sizes`` (``flatten_sizes``) says how many the metric counts.

    Why one question: the embedder's int8 graphs scale each activation tensor by its largest value, so float
    rounding that differs by CPU (an AVX-512 and an AVX2 run of the same graph: passage vectors at cosine 0.999)
    moves every quantised value a little, and a borderline question can flip. In a 19-question slice that is 0.053,
    more than any fixed tolerance that still catches a real regression in 1,190 questions."""
    regressions, missing, compared = [], [], 0
    sizes = sizes or {}
    for key, expected in sorted(baseline.items()):
        if key not in flat:
            missing.append(key)
            continue
        compared += 1
        allowed = tolerance + (1 / sizes[key] if sizes.get(key) else 0.0)
        if key.rsplit("/", 1)[-1] in LOWER_IS_BETTER:
            if flat[key] > expected + allowed + 1e-9:
                regressions.append(f"{key}: {flat[key]:.4f} > baseline {expected:.4f} + {allowed:.3f}")
        elif flat[key] < expected - allowed - 1e-9:
            regressions.append(f"{key}: {flat[key]:.4f} < baseline {expected:.4f} − {allowed:.3f}")
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
