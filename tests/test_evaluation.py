"""The evaluation suite: fusion ablation, record/replay, honest sweep, answer plumbing, report, regression guard."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from rag.eval import evaluation
from rag.eval.answer_runs import ablation_runs, make_answerers, run_answerer
from rag.eval.datasets import EvalOptions, EvalQuestion, load_questions_de
from rag.eval import retrieval_runs
from rag.eval.report_answers import ablation_section, english_section
from rag.eval.evaluation import check_against_baseline, flatten, flatten_sizes, read_baseline, run_evaluation, update_baseline
from rag.eval.retrieval_runs import RecordingRetriever, rrf_fuse, sweep
from rag.index.build import build_index
from rag.index.store import load_index
from rag.retrieve.retrieval import Retriever
from rag.schema import Answer, Citation

ROOT = Path(__file__).resolve().parent.parent


def test_rrf_by_hand():
    dense = {1: 0.9, 2: 0.8}        # ranks: 1 → 1, 2 → 2
    lexical = {2: 10.0, 3: 5.0}     # ranks: 2 → 1, 3 → 2
    fused = dict(rrf_fuse([(dense, 0.5), (lexical, 0.5)], k=60))
    assert fused[1] == pytest.approx(0.5 / 61)
    assert fused[2] == pytest.approx(0.5 / 62 + 0.5 / 61)
    assert fused[3] == pytest.approx(0.5 / 62)
    assert [row for row, _ in rrf_fuse([(dense, 0.5), (lexical, 0.5)])] == [2, 1, 3]
    assert [row for row, _ in rrf_fuse([(dense, 1.0), (lexical, 0.0)])] == [1, 2]  # dense only
    assert rrf_fuse([({}, 0.5), ({}, 0.5)]) == []


class CountingEmbedder:
    """Wraps the fake embedder and counts embedded queries."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dim = inner.dim
        self.queries = 0

    def embed_queries(self, texts):
        self.queries += len(texts)
        return self.inner.embed_queries(texts)

    def embed_passages(self, texts):
        return self.inner.embed_passages(texts)

    def token_count(self, text):
        return self.inner.token_count(text)


@pytest.fixture
def fake_retriever(settings_for, fake_embedder):
    settings = settings_for(chunk_tokens=60, chunk_overlap=10)
    build_index(settings.seeds_dir, settings, fake_embedder)
    embedder = CountingEmbedder(fake_embedder)
    return Retriever(load_index(settings.index_dir, embedder.model_id), embedder, settings)


QUESTIONS = ["Wie viel investiert Meta 2026?", "Microsoft 2025 Rechenzentren", "Google und Amazon 2024",
             "Meta Gewinn 2024 Quartal", "Reality Labs Verlust"]


def _chunks(retriever, question, mode="hybrid"):
    return [h.chunk_id for h in retriever.run(question, k=10, mode=mode)]


def test_replay_gives_what_a_fresh_retriever_gives(fake_retriever):
    recording = RecordingRetriever(fake_retriever, depth=50)
    with recording.configured(replay=False):
        recorded = {q: _chunks(recording, q) for q in QUESTIONS}
    assert recorded == {q: _chunks(fake_retriever, q) for q in QUESTIONS}
    embedded = fake_retriever.embedder.queries
    for overrides in ({"dense_weight": 0.2}, {"sentence_weight": 0.0}, {"dense_weight": 0.0}, {"same_article_penalty": 0.0}):
        with recording.configured(replay=True, **overrides):
            replayed = {q: _chunks(recording, q) for q in QUESTIONS}
        assert fake_retriever.embedder.queries == embedded  # replay embeds nothing
        fresh = Retriever(fake_retriever.index, fake_retriever.embedder,
                          fake_retriever.settings.model_copy(update=overrides))
        assert replayed == {q: _chunks(fresh, q) for q in QUESTIONS}, overrides
        embedded = fake_retriever.embedder.queries  # the fresh retriever's embeddings do not count
    assert recording.settings == fake_retriever.settings  # settings restored after each block
    assert recording.replay is False


def test_recorded_candidates_are_sliced_and_refetched(fake_retriever):
    calls = []

    class Stub(RecordingRetriever):
        def _search(self, question, n):
            calls.append(n)
            return {row: 1.0 - row / 1000 for row in range(n)}  # distinct scores, best first

    stub = Stub(fake_retriever, depth=30)
    with stub.configured(replay=False):
        assert list(stub._cached(stub._dense, stub._search, "q", 10)) == list(range(10))
    assert calls == [30]  # recording fetches the full depth
    with stub.configured(replay=True):
        assert list(stub._cached(stub._dense, stub._search, "q", 5)) == list(range(5))
        assert calls == [30]  # served from the recording
        assert list(stub._cached(stub._dense, stub._search, "q", 40)) == list(range(40))
    assert calls == [30, 40]  # deeper than recorded: fetched again


def test_rrf_ablation_runs_through_the_real_pipeline(fake_retriever):
    recording = RecordingRetriever(fake_retriever)
    with recording.configured(replay=False, fusion=rrf_fuse, same_article_penalty=0.0, **retrieval_runs.RRF_WEIGHTS):
        hits = recording.run(QUESTIONS[0], k=5)
    dense = fake_retriever.dense_search(QUESTIONS[0], fake_retriever.settings.candidates)
    lexical = fake_retriever.bm25_search(QUESTIONS[0], fake_retriever.settings.candidates)
    expected = [fake_retriever.index.chunks[row].chunk_id for row, _ in rrf_fuse([(dense, 0.5), (lexical, 0.5)])[:5]]
    assert [h.chunk_id for h in hits] == expected
    from rag.retrieve import retrieval

    assert retrieval.fuse is not rrf_fuse  # the z-score fusion is back


def _seed_questions(limit=40):
    questions = [q for q in load_questions_de() if q.gold_docs][:limit]
    return [replace(q, split="tune" if i % 2 == 0 else "heldout") for i, q in enumerate(questions)]


def test_sweep_chooses_on_the_tuning_half_only(fake_retriever):
    grid = {"dense_weight": [0.0, 0.5, 1.0], "same_article_penalty": [0.0, 0.5]}
    questions = _seed_questions()
    result = sweep(RecordingRetriever(fake_retriever), questions, grid=grid)
    weights = [p for p in result["points"] if p["parameter"] == "dense_weight"]
    assert [p["value"] for p in weights] == [0.0, 0.5, 1.0]
    best = max(weights, key=lambda p: retrieval_runs._selection_key(p["tune"]))
    assert retrieval_runs._selection_key(best["tune"]) == retrieval_runs._selection_key(
        next(p for p in weights if p["value"] == result["chosen"]["dense_weight"])["tune"])
    assert all("heldout" in p for p in result["points"])
    # scrambling the held-out half's gold documents changes its scores but not the choice
    scrambled = [replace(q, gold_docs=("no-such-doc",)) if q.split == "heldout" else q for q in questions]
    again = sweep(RecordingRetriever(fake_retriever), scrambled, grid=grid)
    assert again["chosen"] == result["chosen"]
    assert again["tuned"]["heldout"]["recall@5"] == 0.0 < result["tuned"]["heldout"]["recall@5"]


def test_sweep_keeps_the_default_without_a_real_gain(fake_retriever):
    grid = {"dense_weight": [0.0, 0.7, 1.0]}
    questions = _seed_questions()
    assert sweep(RecordingRetriever(fake_retriever), questions, grid=grid, min_gain=1.0)["chosen"] == {"dense_weight": 0.7}
    assert sweep(RecordingRetriever(fake_retriever), questions, grid=grid, min_gain=1.0)["changed"] == {}


def test_score_batch_output(tmp_path):
    questions = [EvalQuestion("a", "?", "?", ("d1",), "tune"), EvalQuestion("b", "?", "?", ("d2",), "heldout"),
                 EvalQuestion("c", "?", "?", ("d3",), "heldout")]
    out = tmp_path / "out.jsonl"
    lines = [{"id": "a", "retrieved": [{"doc_id": "d1"}, {"doc_id": "d1"}, {"doc_id": "d9"}]},
             {"id": "b", "retrieved": [{"doc_id": "d9"}, {"doc_id": "d9"}, {"doc_id": "d2"}]}]  # "c" is missing
    out.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    scores = evaluation.score_batch_output(out, questions)
    assert scores["all"]["recall@1"] == pytest.approx(1 / 3) and scores["all"]["questions"] == 3
    assert scores["tune"]["mrr@10"] == 1.0
    assert scores["heldout"]["mrr@10"] == pytest.approx(0.25)  # b: d2 is the 2nd document → 1/2; c: 0
    out.write_text("kein json\n", encoding="utf-8")
    with pytest.raises(evaluation.RagError, match="line 1"):
        evaluation.score_batch_output(out, questions)


def _perfect_answerer(articles, questions):
    """Quotes the first gold evidence sentence at its offsets; abstains on unanswerable questions."""
    by_query = {q.query: q for q in questions}

    def answer(query):
        q = by_query[query]
        if not q.answerable:
            return Answer(q.id, query, "Dazu enthalten die Artikel keine Angabe.", True).to_dict()
        doc = next(d for d in q.gold_docs if any(e in articles[d] for e in q.evidence))
        sentence = next(e for e in q.evidence if e in articles[doc])
        start = articles[doc].index(sentence)
        facts = " ".join(f[0] for f in q.answer)
        citation = Citation(1, doc, "t", None, sentence, start, start + len(sentence), 1.0)
        return Answer(q.id, query, f"{facts} [1]", False, [citation]).to_dict()

    return answer


def test_answer_metrics_plumbing(fake_retriever):
    articles = {d: a.text for d, a in fake_retriever.index.articles.items()}
    questions = load_questions_de()
    outcome = run_answerer(_perfect_answerer(articles, questions), questions, articles)
    perfect = outcome["metrics"]
    assert len(outcome["stages"]["total"]) == len(questions)
    assert perfect["answer_correctness"] == 1.0
    assert perfect["citation_precision"] == perfect["citation_validity"] == 1.0
    assert perfect["abstention_precision"] == perfect["abstention_recall"] == 1.0

    def never_abstains(query):
        result = _perfect_answerer(articles, questions)(query)
        if result["abstained"]:
            return dict(result, abstained=False, answer="Apple investiert 50 Milliarden.")
        citation = dict(result["citations"][0], start=result["citations"][0]["start"] + 1)
        return dict(result, citations=[citation])

    sloppy = run_answerer(never_abstains, questions, articles)["metrics"]
    assert sloppy["abstention_recall"] is None or sloppy["abstention_recall"] == 0.0
    assert sloppy["citation_validity"] == 0.0          # every quote is now off by one character
    assert sloppy["citation_precision"] == 1.0         # but still overlaps the evidence


def test_answerers_come_from_the_cli_factory(fake_retriever):
    settings = fake_retriever.settings.model_copy(update={"llm_url": None})
    answerers, notes = make_answerers(fake_retriever, settings)
    assert set(answerers) == {"extractive"}
    assert any("'server' skipped: no server configured" in n for n in notes)
    result, stages = answerers["extractive"]("Wie viel investiert Meta 2026?")
    assert result["question"] == "Wie viel investiert Meta 2026?" and isinstance(result["citations"], list)
    assert set(stages) == {"retrieval", "answer", "total"}
    assert stages["total"] >= stages["retrieval"] + stages["answer"] - 1e-6


def test_ablation_answers_once_per_rule_and_reports_a_row_each(fake_retriever):
    from rag.answer.answering import RULES

    articles = {d: a.text for d, a in fake_retriever.index.articles.items()}
    questions = [q for q in load_questions_de() if q.answerable][:6]
    assert ablation_runs(fake_retriever, fake_retriever.settings, questions, articles, EvalOptions()) == {}
    rows = ablation_runs(fake_retriever, fake_retriever.settings, questions, articles, EvalOptions(ablate=True))
    assert list(rows) == list(RULES)
    full = run_answerer(make_answerers(fake_retriever, fake_retriever.settings, ["extractive"])[0]["extractive"],
                        questions, articles)["metrics"]
    for scores in rows.values():
        assert 0.0 <= scores["answer_correctness"] <= 1.0 and scores["quoted_chars"] > 0
    # switching off the runner-up and the trimming of context changes what is quoted, not what is decided
    assert {round(r["quoted_chars"], 6) for r in rows.values()} != {round(full["quoted_chars"], 6)}
    lines = ablation_section(rows, full)
    assert sum(line.startswith("| without `") for line in lines) == len(RULES)
    assert any(line.startswith("| all rules |") for line in lines)


def test_flatten_check_and_baseline(tmp_path):
    result = {"quick": True, "created": "now", "commit": "abc", "datasets": {
        "xquad": {"configs": {"hybrid": {"heldout": {"recall@1": 0.95, "questions": 10},
                                         "latency": {"p50_ms": 12.0}}}},
        "questions_de": {"configs": {}, "answers": {"extractive": {"answer_correctness": 0.8, "answered": 3,
                                                                    "citation_precision": None}}}}}
    flat = flatten(result)
    assert flat == {"xquad/heldout/hybrid/recall@1": 0.95, "questions_de/answer/extractive/answer_correctness": 0.8}
    assert check_against_baseline(flat, {"xquad/heldout/hybrid/recall@1": 0.97}).ok          # 0.02 below: allowed
    failed = check_against_baseline(flat, {"xquad/heldout/hybrid/recall@1": 0.9701, "gone": 0.5})
    assert not failed.ok and failed.regressions[0].startswith("xquad/heldout/hybrid/recall@1")
    assert failed.missing == ["gone"] and failed.compared == 1
    sizes = flatten_sizes(result)  # the answer row does not say how many answerable questions it counts
    assert sizes == {"xquad/heldout/hybrid/recall@1": 10}
    assert check_against_baseline(flat, {"xquad/heldout/hybrid/recall@1": 1.07}, sizes=sizes).ok  # 0.02 + 1/10
    assert not check_against_baseline(flat, {"xquad/heldout/hybrid/recall@1": 1.0701}, sizes=sizes).ok
    path = tmp_path / "baseline.json"
    update_baseline(dict(result, flat=flat), path)
    update_baseline(dict(result, quick=False, flat={"x": 1.0}), path)
    stored = read_baseline(path)
    assert stored["quick"]["metrics"] == flat and stored["full"]["metrics"] == {"x": 1.0}


def test_check_guards_false_abstention_and_calibration_error_from_above():
    flat = {"xquad/answer/extractive/false_abstention": 0.06, "xquad/answer/extractive/ece": 0.03,
            "xquad/answer/extractive/contains_gold": 0.80}
    assert check_against_baseline(flat, {"xquad/answer/extractive/false_abstention": 0.04,        # +0.02: allowed
                                         "xquad/answer/extractive/ece": 0.10}).ok                # better: fine
    failed = check_against_baseline(flat, {"xquad/answer/extractive/false_abstention": 0.0399,
                                           "xquad/answer/extractive/contains_gold": 0.8201})
    assert [r.split(":")[0] for r in failed.regressions] == ["xquad/answer/extractive/contains_gold",
                                                             "xquad/answer/extractive/false_abstention"]
    assert "> baseline" in failed.regressions[1]


def test_xquad_asked_in_english_is_guarded_and_reported_beside_german():
    answers = {"extractive": {"answerable": 558, "contains_gold": 0.85, "false_abstention": 0.05,
                              "retrieval": {"recall@1": 0.94},
                              "english": {"questions": 558, "recall@1": 0.89, "contains_gold": 0.7,
                                          "false_abstention": 0.08, "short_f1": None}}}
    flat = flatten({"datasets": {"xquad": {"configs": {}, "answers": answers}}})
    assert flat["xquad/answer/extractive/english/contains_gold"] == 0.7 and "xquad/answer/extractive/english/short_f1" not in flat
    failed = check_against_baseline(flat, {"xquad/answer/extractive/english/false_abstention": 0.05})
    assert "> baseline" in failed.regressions[0]
    lines = english_section(answers)
    german, english = (line for line in lines if line.startswith("| `extractive`"))
    assert "| German | 558 | 0.940 |" in german and "| English | 558 | 0.890 |" in english
    assert english_section({"extractive": {"contains_gold": 0.8}}) == []


def test_committed_baseline_is_well_formed():
    stored = read_baseline()
    for mode in ("quick", "full"):
        metrics = stored[mode]["metrics"]
        assert metrics and all(0.0 <= v <= 1.0 for v in metrics.values())
    full = stored["full"]["metrics"]
    for config in ("dense", "bm25", "hybrid"):
        assert f"xquad/heldout/{config}/recall@1" in full
    assert full["xquad/heldout/hybrid/recall@1"] > full["xquad/heldout/bm25/recall@1"]


def test_cli_check_exit_codes(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from rag.cli import app

    result = {"quick": True, "created": "now", "commit": "abc", "seconds": 1.0, "settings": {}, "machine": {},
              "datasets": {"xquad": {"configs": {"hybrid": {"heldout": {"recall@1": 0.95}}}, "paragraphs": 1,
                                     "passages": 1, "index": "x", "questions": 1, "splits": {}}}}
    result["flat"] = flatten(result)
    monkeypatch.setattr(evaluation, "run_evaluation", lambda settings, options, log: result)
    baseline = tmp_path / "baseline.json"
    args = ["eval", "--quick", "--check", "--baseline", str(baseline), "--reports-dir", str(tmp_path / "r")]
    baseline.write_text(json.dumps({"quick": {"metrics": {"xquad/heldout/hybrid/recall@1": 0.96}}}))
    ok = CliRunner().invoke(app, args)
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "r" / "quick.md").exists() and (tmp_path / "r" / "quick.json").exists()
    baseline.write_text(json.dumps({"quick": {"metrics": {"xquad/heldout/hybrid/recall@1": 0.98}}}))
    failed = CliRunner().invoke(app, args)
    assert failed.exit_code == 1
    assert "REGRESSION xquad/heldout/hybrid/recall@1" in failed.output


def test_quick_run_real_model(real_seeds_index, tmp_path):
    """The --quick subset end to end with the real default embedder, FAISS, BM25 and ranx; no regression against the baseline."""
    from rag.eval.report import write_report

    settings, embedder, index = real_seeds_index
    options = EvalOptions(quick=True, xquad_workdir=tmp_path / "xq", xquad_index=tmp_path / "xq-index",
                          seeds_index=settings.index_dir)
    result = run_evaluation(settings, options, embedder=embedder)
    xquad, german = result["datasets"]["xquad"], result["datasets"]["questions_de"]
    assert xquad["paragraphs"] == 10 and {"dense", "bm25", "hybrid", "rrf"} <= set(xquad["configs"])
    assert german["questions"] >= 70 and german["answerable"] == sum(1 for q in load_questions_de() if q.gold_docs)
    hybrid = german["configs"]["hybrid"]["all"]
    assert hybrid["mrr@10"] >= 0.8 and hybrid["evidence_hit@5"] >= 0.8
    assert german["configs"]["hybrid"]["latency"]["n"] == german["questions"]
    paths = write_report(result, tmp_path / "reports", "t")
    markdown = paths["markdown"].read_text(encoding="utf-8")
    assert "| `hybrid` |" in markdown and "### heldout (quick slice" in markdown
    assert json.loads(paths["json"].read_text(encoding="utf-8"))["flat"] == result["flat"]
    for chart in ("metrics", "latency"):
        assert paths[chart].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    outcome = check_against_baseline(result["flat"], read_baseline()["quick"]["metrics"],
                                     sizes=result["sizes"])
    assert outcome.ok, outcome.regressions
    assert outcome.compared > 20


@pytest.mark.slow
def test_full_run_no_regression(tmp_path):
    """The full evaluation (XQuAD-de 1190 questions + sweep, German eval set) against the committed baseline."""
    from rag.settings import load_settings

    result = run_evaluation(load_settings(), EvalOptions())
    outcome = check_against_baseline(result["flat"], read_baseline()["full"]["metrics"],
                                     sizes=result["sizes"])
    assert outcome.ok, outcome.regressions
