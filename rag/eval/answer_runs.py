"""Running answerers over eval questions: made by the factory the CLI and the chat use, timed per stage, scored.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from rag.errors import RagError
from rag.eval.datasets import EvalOptions, EvalQuestion, score_splits, wants
from rag.eval.metrics import AnswerRecord, answer_metrics, doc_ranking, latency_summary
from rag.retrieve.retrieval import Retriever
from rag.settings import Settings

ANSWER_CONFIGS = ("extractive", "llm", "server")
K = 10


@dataclass
class Answerer:
    """One answerer as the suite calls it: question → (answer dict, seconds per stage)."""

    name: str
    call: Callable[..., object]  # (question, hits=...) → answer object: retrieval is timed on its own
    retriever: Retriever
    k: int = K

    def __call__(self, question: str) -> tuple[dict, dict[str, float]]:
        started = time.perf_counter()
        hits = self.retriever.run(question, k=self.k)
        retrieved = time.perf_counter()
        result = _as_dict(self.call(question, hits=hits))
        done = time.perf_counter()
        return result, {"retrieval": retrieved - started, "answer": done - retrieved, "total": done - started}


def _available(name: str, settings: Settings, asked: bool) -> str | None:
    """Why answerer ``name`` cannot run here (None: it can)."""
    if name == "extractive":
        return None
    if name == "server":
        return None if getattr(settings, "llm_url", None) else "no server configured (settings.llm_url / RAG_LLM_URL)"
    if importlib.util.find_spec("xllamacpp") is None:
        return "the local LLM runtime is not installed (xllamacpp)"
    if not asked and getattr(settings, "answerer", None) != "llm":
        return "not requested (--config llm, or settings.answerer = 'llm'; about 8 s per question on 2 cores)"
    return None


def make_answerers(retriever: Retriever, settings: Settings, wanted: Iterable[str] = ANSWER_CONFIGS,
                   asked: bool = False) -> tuple[dict[str, Answerer], list[str]]:
    """The answerers this machine can run, made by the same factory as the CLI and the chat use
    (``rag.answer.answering.make_answerer``), so the suite measures what users get; notes on the others.

    ``asked``: the configurations were named explicitly (the slow local LLM runs only then).
    """
    from rag.answer.answering import make_answerer

    answerers, notes = {}, []
    for name in wanted:
        reason = _available(name, settings, asked)
        if reason:
            notes.append(f"Answerer '{name}' skipped: {reason}.")
            continue
        local = settings.model_copy(update={"answerer": name})
        try:
            responder = make_answerer(retriever, local)
            responder.warm_up()
        except RagError as err:  # an unconfigured or unreachable backend says so in one sentence
            notes.append(f"Answerer '{name}' skipped: {err}")
            continue
        answerers[name] = Answerer(name, responder.run, retriever, local.top_k)
    return answerers, notes


def _as_dict(result: object) -> dict:
    return result.to_dict() if hasattr(result, "to_dict") else dict(result)


def run_answerer(answer: Callable[[str], object], questions: Sequence[EvalQuestion], articles: Mapping[str, str],
                 progress: bool = False, desc: str = "", span_gold: bool = False) -> dict:
    """Answer every question; metrics, doc rankings of the answers' retrieval lists, per-stage latencies.

    ``answer`` returns an answer dict, or ``(answer dict, {stage: seconds})`` as an ``Answerer`` does.
    ``span_gold``: the questions' gold answers are spans (XQuAD, SQuAD, a user's file), scored by EM/F1.
    The metrics are those of ``rag.eval.metrics.answer_metrics`` and ``rag.eval.answers.answer_scores``
    (with the reliability curve); ``worst`` lists the worst failures, ``judged`` every answer as judged.
    """
    from tqdm import tqdm

    from rag.eval.answers import answer_scores, judge, worst

    records, ranked, failures, judged = [], {}, [], []
    stages: dict[str, list[float]] = {}
    for q in tqdm(questions, desc=desc, unit="q", disable=not progress, leave=False):
        started = time.perf_counter()
        try:
            outcome = answer(q.query)
        except RagError as err:
            failures.append(f"{q.id}: {err}")
            outcome = {"answer": None, "abstained": False, "citations": [], "retrieved": []}
        result, timing = outcome if isinstance(outcome, tuple) else (_as_dict(outcome), {})
        timing = dict(timing) or {"total": time.perf_counter() - started}
        for stage, seconds in timing.items():
            stages.setdefault(stage, []).append(seconds)
        ranked[q.id] = doc_ranking(r["doc_id"] for r in result.get("retrieved") or [])
        records.append(AnswerRecord(q.answerable, bool(result.get("abstained")), result.get("answer"), q.answer,
                                    list(result.get("citations") or []), q.gold_docs, q.evidence))
        judged.append(judge(q, result, span_gold))
    metrics = answer_metrics(records, articles)
    if not any(q.evidence for q in questions):  # without gold evidence sentences a citation cannot be checked
        metrics.update(citation_precision=None, citation_hit=None)
    return {"metrics": {**metrics, **answer_scores(judged)}, "worst": worst(judged), "judged": judged,
            "latencies": stages.get("total", []), "stages": stages, "ranked": ranked, "failures": failures}


def open_retriever(index_dir: Path, settings: Settings, articles_dir: Path, log: Callable[[str], None],
               progress: bool, embedder=None) -> Retriever:
    """Build (or update) the index of ``articles_dir`` at ``index_dir`` and open a warmed-up retriever on it."""
    from rag.retrieve.embedding import make_embedder
    from rag.index.build import build_index
    from rag.index.store import load_index

    local = settings.model_copy(update={"index_dir": Path(index_dir)})
    embedder = embedder or make_embedder(local)
    report = build_index(articles_dir, local, embedder, progress=progress, log=log)
    if not report.up_to_date:
        log(f"Indexed {report.articles} articles into {report.chunks} passages at {index_dir} ({report.seconds:.0f} s).")
    retriever = Retriever(load_index(Path(index_dir), embedder.model_id), embedder, local)
    retriever.warm_up()
    return retriever


def answer_runs(retriever: Retriever, settings: Settings, questions: Sequence[EvalQuestion],
                articles: Mapping[str, str], options: EvalOptions, notes: list[str], samples: dict,
                span_gold: bool = False, label: str = "") -> dict[str, dict]:
    """Every wanted answerer over ``questions``: its metrics, latency per stage, retrieval, worst failures.

    Notes (answerers skipped, quick run) go to ``notes``, per-question latencies to ``samples``.
    """
    if options.quick:
        notes.append("Quick run: answerers not run (retrieval only).")
        return {}
    answer_configs = [c for c in ANSWER_CONFIGS if wants(options, c)]
    answers = {}
    if answer_configs:
        answerers, answer_notes = make_answerers(retriever, settings, answer_configs, asked=options.configs is not None)
        notes += answer_notes
        for name, answer in answerers.items():
            outcome = run_answerer(answer, questions, articles, progress=options.progress,
                                   desc=f"{label} answer {name}".strip(), span_gold=span_gold)
            answers[name] = {**outcome["metrics"], "latency": latency_summary(outcome["latencies"]),
                             "stages": {stage: latency_summary(v) for stage, v in outcome["stages"].items()},
                             "retrieval": score_splits(questions, outcome["ranked"])["all"],
                             "failures": outcome["failures"][:20], "worst": outcome["worst"], "_judged": outcome["judged"]}
            for stage, values in outcome["stages"].items():
                samples[f"{name}:{stage}"] = values
    return answers


ABLATION_METRICS = ("contains_gold", "answer_correctness", "short_f1", "gold_citation", "citation_precision",
                    "quoted_chars")


def ablation_runs(retriever: Retriever, settings: Settings, questions: Sequence[EvalQuestion],
                  articles: Mapping[str, str], options: EvalOptions, span_gold: bool = False,
                  label: str = "") -> dict[str, dict]:
    """The extractive answerer with each composition rule (``rag.answer.answering.RULES``) switched off in turn:
    rule → its metrics without that rule. Abstention is decided before any rule applies, so it is not measured."""
    from rag.answer.answering import RULES

    if options.quick or not options.ablate:
        return {}
    rows = {}
    for rule in RULES:
        local = settings.model_copy(update={"answer_rules_off": [rule]})
        answerers, _ = make_answerers(retriever, local, ["extractive"])
        for answer in answerers.values():
            outcome = run_answerer(answer, questions, articles, progress=options.progress,
                                   desc=f"{label} without {rule}".strip(), span_gold=span_gold)
            rows[rule] = {k: outcome["metrics"].get(k) for k in ABLATION_METRICS}
    return rows
