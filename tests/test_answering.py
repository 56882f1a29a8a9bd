"""Answers with citations on the real seeds index: the eval set's acceptance numbers, abstention, CLI.

The eval-set tests answer every question of eval/questions_de.jsonl (follow-ups by their "standalone" form)
and print the measured numbers (run with -s to see them); they fail when a target is missed, or for abstention
when the documented level is missed.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from rag.answer.answering import ExtractiveAnswerer, GenerativeAnswerer, agreement, calibrate_threshold
from rag.schema import Article
from rag.answer.facts import reporting_months, sentence_facts
from rag.answer.generation import REFUSAL
from rag.answer.grounding import check_answer, check_quotes, markers
from rag.answer.questions import profile_question
from rag.retrieve.retrieval import Retriever
from rag.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [json.loads(line) for line in (ROOT / "eval" / "questions_de.jsonl").read_text(encoding="utf-8").splitlines()
             if line.strip()]
RAG = str(Path(sys.executable).with_name("rag"))


def query(q: dict) -> str:
    return q["standalone"] or q["question"]


def tuning_half(q: dict) -> bool:
    """The calibration half: odd-numbered ids (9 of the 18 unanswerable questions fall in each half)."""
    return int(q["id"][1:]) % 2 == 1


def score(questions: list[dict], answers: dict) -> dict:
    """The acceptance measures of issue 4 over ``answers`` (id → Answer)."""
    answerable = [q for q in questions if q["answerable"]]
    unanswerable = [q for q in questions if not q["answerable"]]

    def correct(q) -> bool:
        a = answers[q["id"]]
        text = (a.answer or "").lower()
        return not a.abstained and all(any(v.lower() in text for v in fact) for fact in q["answer"])

    return {
        "correct": sum(map(correct, answerable)) / len(answerable),
        "gold_citation": sum(not answers[q["id"]].abstained and any(c.doc_id in q["gold_docs"]
                                                                    for c in answers[q["id"]].citations)
                             for q in answerable) / len(answerable),
        "abstained_unanswerable": sum(answers[q["id"]].abstained for q in unanswerable) / max(len(unanswerable), 1),
        "false_abstention": sum(answers[q["id"]].abstained for q in answerable) / len(answerable),
        "misses": [q["id"] for q in answerable if not correct(q)],
    }


def assert_verifiable(answer, texts: dict[str, str]) -> None:
    """Every quote is the article's exact text at its offsets; every [n] is a citation that was given."""
    assert check_quotes(answer.citations, texts) == []
    assert set(markers(answer.answer or "")) <= {c.n for c in answer.citations}


@pytest.fixture(scope="module")
def seeds(real_seeds_index):
    settings, embedder, index = real_seeds_index
    retriever = Retriever(index, embedder, settings)
    retriever.warm_up()
    answerer = ExtractiveAnswerer(retriever, settings)
    answerer.warm_up()
    return settings, retriever, answerer


@pytest.fixture(scope="module")
def extractive_run(seeds):
    """Every eval question answered once: answers, selections and answering times (retrieval excluded)."""
    settings, retriever, answerer = seeds
    answers, selections, seconds = {}, {}, []
    for q in QUESTIONS:
        hits = retriever.run(query(q), k=settings.top_k)
        started = time.perf_counter()
        answers[q["id"]] = answerer.run(query(q), q["id"], hits)
        seconds.append(time.perf_counter() - started)
        selections[q["id"]] = answerer.select(query(q), hits)
    return answers, selections, seconds


# --- question and sentence analysis ------------------------------------------------------------------------


def test_question_profiles_read_kind_time_and_language():
    today = date(2026, 11, 24)
    assert profile_question("Wie viel will Meta 2026 investieren?", today).kind == "amount"
    assert profile_question("Wer ist die Finanzchefin von Meta?", today).kind == "person"
    assert profile_question("Wann wurde Trump gesperrt?", today).kind == "date"
    quarter = profile_question("Wie hoch war der Umsatz im dritten Quartal 2024?", today)
    assert quarter.years == {2024} and "2024-q3" in quarter.periods
    span = profile_question("Wie haben sich Metas Investitionen von 2024 bis 2026 entwickelt?", today)
    assert span.years == {2024, 2025, 2026} and span.timeline
    current = profile_question("Wie viel investiert Meta dieses Jahr?", today)
    assert current.newest and 2026 in current.years
    english = profile_question("What was Meta's revenue in the fourth quarter of 2025?", today)
    assert english.english and "2025-q4" in english.periods
    assert any("umsatz" in dict(forms) for _, forms in english.terms)  # "revenue" looked up in German
    assert profile_question("What was Meta's quarterly profit at the end of 2025?", today).kind == "amount"


def test_reporting_months_follow_the_asked_period():
    assert reporting_months({"2025-q4"}) == {"2026-01", "2026-02"}  # fourth-quarter results come in January
    assert reporting_months({"2024-q3", "month:2025-07"}) == {"2024-10", "2024-11", "2025-07"}
    assert reporting_months(set()) == frozenset()


def test_relative_times_are_resolved_against_the_article_date():
    article = Article("a", "T", "2026-01-28", False, "Im vergangenen Quartal stieg der Umsatz. Für das laufende Jahr "
                      "plant der Konzern mehr.", "s", "h")
    first = sentence_facts(article, 0, 39)
    second = sentence_facts(article, 40, len(article.text))
    assert first.years == {2025} and first.periods == {"2025-q4"}
    assert second.years == {2026}


def test_calibration_picks_the_cut_that_catches_most_within_the_budget():
    supports = [0.1, 0.2, 0.3, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9, 2.0, 2.1, 2.2, 2.3, 2.4, 2.5]
    answerable = [False, True, False] + [True] * 17
    assert calibrate_threshold(supports, answerable, 0.0) == 0.15  # catches one, no answerable question lost
    assert calibrate_threshold(supports, answerable, 0.1) == 0.6  # one false abstention buys the second one
    assert calibrate_threshold([0.4, 0.8], [True, True], 0.0) == 0.2  # nothing to catch: halfway below the lowest
    with pytest.raises(ValueError):
        calibrate_threshold([], [])


# --- the eval set --------------------------------------------------------------------------------------------


def test_extractive_answers_meet_the_targets_on_the_eval_set(seeds, extractive_run, capsys):
    settings, retriever, _ = seeds
    answers, _, seconds = extractive_run
    texts = {d: a.text for d, a in retriever.index.articles.items()}
    for answer in answers.values():
        assert_verifiable(answer, texts)
    scores = score(QUESTIONS, answers)
    halves = {name: score([q for q in QUESTIONS if tuning_half(q) == tune], answers)
              for name, tune in (("tuning half", True), ("held-out half", False))}
    p50 = statistics.median(seconds) * 1000
    with capsys.disabled():
        for name, s in [("all", scores), *halves.items()]:
            print(f"\nextractive, {name}: correct {s['correct']:.3f}, gold citation {s['gold_citation']:.3f}, "
                  f"abstained unanswerable {s['abstained_unanswerable']:.3f}, false abstention "
                  f"{s['false_abstention']:.3f}; misses {s['misses']}")
        print(f"extractive answering p50 {p50:.1f} ms over retrieval")
    assert scores["correct"] >= 0.85
    assert scores["gold_citation"] >= 0.90
    assert scores["false_abstention"] <= 0.10
    assert scores["abstained_unanswerable"] >= 0.80
    assert p50 <= 60


def test_abstention_threshold_is_calibrated(extractive_run):
    """The setting's default comes from calibrate_threshold on the tuning half (rules decide first)."""
    _, selections, _ = extractive_run
    decided_by_rules = {qid for qid, s in selections.items() if any("support" not in r for r in s.reasons)}
    tune = [q for q in QUESTIONS if tuning_half(q) and q["id"] not in decided_by_rules]
    threshold = calibrate_threshold([selections[q["id"]].support for q in tune], [q["answerable"] for q in tune], 0.05)
    assert abs(threshold - Settings.model_fields["abstain_below"].default) < 0.03, (
        f"recalibrated threshold {threshold}: update Settings.abstain_below")


def test_abstention_says_so_and_lists_the_nearest_sources(extractive_run):
    answers, selections, _ = extractive_run
    apple = answers["q088"]  # "Wie viel investiert Apple 2025 …": Apple never occurs in the articles
    assert apple.abstained and apple.answer.startswith(REFUSAL) and "Nächstliegende Quellen" in apple.answer
    assert apple.citations and "Apple" in apple.abstain_reason
    assert answers["q089"].abstained and "2027" in answers["q089"].abstain_reason


def test_answer_sentence_rules_catch_near_misses(extractive_run):
    answers, _, _ = extractive_run
    google = answers["q101"]  # "Wie hoch war Googles Umsatz im vierten Quartal 2025?": only Meta's revenue is reported
    assert google.abstained and "Googles" in google.abstain_reason
    assert answers["q098"].abstained and "person" in answers["q098"].abstain_reason  # nobody is named as its head
    assert "xAI" in answers["q103"].abstain_reason  # the best sentence reports Meta's investment
    assert answers["q129"].abstained and "revenue" in answers["q129"].abstain_reason  # Amazon's plans, not revenue
    assert not answers["q009"].abstained  # "Der Bereich verbuchte …" right after "die Sparte Reality Labs"


def test_the_asked_measure_and_period_pick_the_sentence(extractive_run):
    """"quarterly profit at the end of 2025": the fourth-quarter report (ranked low by the retriever) gives
    the profit; the revenue and Reality Labs loss sentences beside it are other measures."""
    answer = extractive_run[0]["q120"]
    assert "22,77" in answer.answer and "Umsatz" not in answer.answer and "Verlust" not in answer.answer
    assert {c.date[:7] for c in answer.citations} <= {"2026-01", "2026-02"}


def test_a_change_is_read_from_the_sentence_that_refers_back(extractive_run):
    """"Wie stark ist Microsofts KI-Umsatz gewachsen …?": the best sentence gives the level (13 Mrd.); the growth is
    in the next paragraph's "Das entspricht zwar einem Plus von 175 Prozent …", which the quote takes along."""
    answer = extractive_run[0]["q028"]
    assert "13 Milliarden" in answer.answer and "175 Prozent" in answer.answer and "fünf Prozent" in answer.answer
    assert "Das entspricht" in answer.citations[0].quote
    assert profile_question("Wie stark ist der Umsatz gewachsen?", date(2026, 11, 24)).change


def test_generated_answers_must_keep_each_dates_figures_and_the_date_phrase(extractive_run):
    """What a language model must keep (``agreement``): every figure of every date for a timeline (Reality Labs'
    losses need 3,74, 4,9 and 6), and for "Bis wann …?" the best sentence's "bis Ende" (not the question's date)."""
    selections = extractive_run[1]
    timeline = agreement(selections["q077"])
    assert timeline == {"all_figures": [c.quote for c in selections["q077"].chosen]} and len(timeline["all_figures"]) >= 2
    assert agreement(selections["q058"])["mention"] == [["bis Ende"]]
    assert check_answer("Zuckerberg wollte das im Herbst 2024 schaffen [1].", {1: selections["q058"].chosen[0].quote},
                        **agreement(selections["q058"])).passed is False


def test_timeline_names_dates_in_order_and_cites_each(extractive_run):
    answer = extractive_run[0]["q079"]  # "Wie haben sich Metas jährliche Investitionen von 2024 bis 2026 entwickelt?"
    lines = answer.answer.splitlines()
    assert len(lines) >= 3 and "zeitlich geordnet" in lines[0]
    dates = [c.date for c in answer.citations]
    assert dates == sorted(dates) and len(set(dates)) >= 2
    assert all(f"[{c.n}]" in answer.answer for c in answer.citations)


def test_current_questions_put_the_newest_source_first(seeds):
    settings, retriever, answerer = seeds
    question = "Wie viel will Meta aktuell dieses Jahr investieren?"
    answer = answerer.run(question, hits=retriever.run(question, k=settings.top_k))
    assert not answer.abstained and "115" in answer.answer
    newest = max(a.date for a in retriever.index.articles.values() if a.date)
    assert answer.citations[0].date in (newest, "2026-01-28")


def test_person_answer_reaches_into_the_following_quote(extractive_run):
    answer = extractive_run[0]["q036"]  # "Wer ist die Finanzchefin von Microsoft?" → "…“, sagte Amy Hood."
    assert "Amy Hood" in answer.answer and "Amy Hood" in answer.citations[0].quote


# --- command line --------------------------------------------------------------------------------------------


def run_rag(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([RAG, *args], capture_output=True, text=True, timeout=timeout, env={**os.environ})


def test_rag_ask_prints_answer_and_sources_and_json(seeds):
    settings, _, _ = seeds
    shown = run_rag("ask", "Wie viel zahlt Meta für Scale AI?", "--index-dir", str(settings.index_dir))
    assert shown.returncode == 0, shown.stderr
    assert "14,3 Milliarden" in shown.stdout and "Quellen:" in shown.stdout and "[1] " in shown.stdout
    as_json = run_rag("ask", "Wie viel zahlt Meta für Scale AI?", "--index-dir", str(settings.index_dir), "--json")
    lines = as_json.stdout.strip().splitlines()
    assert len(lines) == 1
    answer = json.loads(lines[0])
    assert {"id", "question", "answer", "abstained", "citations", "retrieved"} <= answer.keys()
    assert len(answer["retrieved"]) >= 10 and answer["citations"][0]["quote"]


def test_rag_ask_user_errors_are_one_sentence(seeds):
    settings, _, _ = seeds
    empty = run_rag("ask", "   ", "--index-dir", str(settings.index_dir))
    assert empty.returncode == 2 and empty.stderr.strip() == "Error: The question is empty."
    wrong = run_rag("ask", "Frage?", "--index-dir", str(settings.index_dir), "--answerer", "magic")
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr and "answerer" in wrong.stderr


def test_rag_batch_answers_forty_questions_and_reports_one_bad_line(seeds, tmp_path):
    settings, _, _ = seeds
    lines = [json.dumps({"id": q["id"], "question": query(q)}, ensure_ascii=False) for q in QUESTIONS[:40]]
    lines.insert(17, '{"id": "broken", "question": ')
    questions = tmp_path / "questions.jsonl"
    questions.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "answers.jsonl"
    done = run_rag("batch", str(questions), "--out", str(out), "--index-dir", str(settings.index_dir))
    assert done.returncode == 0 and "Traceback" not in done.stderr
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in records] == [q["id"] for q in QUESTIONS[:40]]
    assert all(r["answer"] for r in records)
    assert "line 18 skipped" in done.stderr and "40 answered" in done.stderr and "1 skipped" in done.stderr


# --- the local model (pytest -m llm) -------------------------------------------------------------------------


@pytest.mark.llm
def test_local_llm_on_the_eval_set(seeds, capsys):
    """The local model on every eval question: correctness, grounding checks, latency (about 6 s a question)."""
    settings, retriever, _ = seeds
    answerer = GenerativeAnswerer(retriever, settings.model_copy(update={"answerer": "llm"}))
    answerer.warm_up()
    texts = {d: a.text for d, a in retriever.index.articles.items()}
    answers, first, total, generated = {}, [], [], []
    for q in QUESTIONS:
        started, first_piece = time.perf_counter(), None
        for piece in answerer.stream(query(q), q["id"]):
            if isinstance(piece, str):
                first_piece = first_piece or time.perf_counter() - started
            else:
                answers[q["id"]] = piece
        if first_piece is not None:
            first.append(first_piece)
            total.append(time.perf_counter() - started)
            generated.append(answers[q["id"]])
        assert_verifiable(answers[q["id"]], texts)
    scores = score(QUESTIONS, answers)
    checked = [a for a in generated if a.grounding]
    failed = [a for a in checked if not a.grounding["passed"]]
    with capsys.disabled():
        print(f"\nlocal LLM: correct {scores['correct']:.3f}, gold citation {scores['gold_citation']:.3f}, abstained "
              f"unanswerable {scores['abstained_unanswerable']:.3f}, false abstention {scores['false_abstention']:.3f}; "
              f"generated {len(generated)}, grounding checks {len(checked)}, failed {len(failed)} (fell back); "
              f"first token p50 {statistics.median(first):.1f} s, whole answer p50 {statistics.median(total):.1f} s; "
              f"misses {scores['misses']}")
        for a in failed:
            print(f"  {a.id}: {a.fallback_reason}")
    assert scores["correct"] >= 0.90 and scores["false_abstention"] <= 0.10
    assert statistics.median(first) <= 6 and statistics.median(total) <= 12
