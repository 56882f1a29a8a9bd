"""Answer metrics and the user's own eval data, checked against values computed by hand.

The ten-question file below is a user's CSV over the seed articles (eight answerable, two unanswerable);
each question gets a fixed answer object, chosen so that every kind of success and failure occurs once.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from rag.errors import RagError
from rag.eval.answers import (answer_scores, exact_match, expected_calibration_error, failure_reason, judge,
                              normalise_short, reliability, token_f1, worst)
from rag.eval.metrics import retrieval_metrics
from rag.eval.own_data import content_key, drop_unknown_docs, read_question_file, read_squad
from rag.eval.xquad import write_articles

A0, A1, A2, A3, A4 = ("000_cb3fcbcbbf75b92a", "001_39bf3e9c7bd6fdf9", "002_ce2073f525773260", "003_a751d851a43831ac",
                      "004_d8aa40ec0fc96a64")

# id, question, gold_docs, answers, unanswerable
ROWS = [
    ("a1", "Wie viel will Meta 2026 investieren?", f"{A2};{A4}", "115 bis 135 Milliarden;115 bis 135 Milliarden US-Dollar", ""),
    ("a2", "Wer ist die Finanzchefin von Meta?", A0, "Susan Li", "false"),
    ("a3", "Wie viel Umsatz machte Meta Ende 2025?", A2, "59,9 Milliarden Dollar", ""),
    ("a4", "Wie viel Gewinn machte Meta im dritten Quartal 2024?", A0, "13,5 Milliarden Dollar", ""),
    ("a5", "Wer hat Scale AI mitgegründet?", A1, "Alexandr Wang", "no"),
    ("a6", "Wann zahlte Facebook 22 Milliarden Dollar für WhatsApp?", A1, "2014", ""),
    ("a7", "Wie heißt die KI-Firma von Elon Musk?", A2, "xAI", ""),
    ("a8", "Welches Sprachmodell will Microsoft verkaufen?", A3, "Copilot", "0"),
    ("u1", "Wie viele Mitarbeiter hat Meta?", "", "", "true"),
    ("u2", "Wie hoch ist Apples KI-Budget?", "", "", "ja"),
]


def answer(text, short, confidence, cited, retrieved, abstained=False, quote=None) -> dict:
    return {"answer": text, "abstained": abstained, "short_answer": short, "confidence": confidence,
            "citations": [{"n": i + 1, "doc_id": d, "quote": quote or text} for i, d in enumerate(cited)],
            "retrieved": [{"doc_id": d} for d in retrieved]}


ANSWERS = {
    # right, short answer = second accepted text; one of two gold articles ranked first
    "a1": answer("Meta plant 115 bis 135 Milliarden US-Dollar [1].", "115 bis 135 Milliarden US-Dollar", 0.9, [A4],
                 [A4, A2, A1]),
    # right, short answer one word too long: F1 = 2·(2/3)·1 / (2/3 + 1) = 0.8
    "a2": answer("Finanzchefin Susan Li betonte zugleich … [1]", "Finanzchefin Susan Li", 0.8, [A0], [A0, A3]),
    # right, but cites the non-gold article that states the same figure; gold ranked second
    "a3": answer("Umsatz von knapp 59,9 Milliarden Dollar [1].", "59,9 Milliarden Dollar", 0.7, [A4], [A4, A2]),
    # wrong sentence of the gold article: F1 = 2/3 (milliarden, dollar)
    "a4": answer("Der Umsatz stieg auf gut 39 Milliarden Dollar [1].", "39 Milliarden Dollar", 0.6, [A0], [A0],
                 quote="Der Umsatz stieg auf gut 39 Mrd. Dollar."),   # a short answer that is not in its quote
    # gold article not retrieved
    "a5": answer("Jeremy Goldman, Chefanalyst bei Emarketer [1].", "Jeremy Goldman", 0.55, [A3], [A3, A0]),
    # declined although the gold article is first
    "a6": answer("Dazu finde ich in den Artikeln nichts.", None, 0.2, [], [A1, A3], abstained=True),
    # right, but no short answer and no confidence (an answerer before issue 14)
    "a7": answer("Elon Musks KI-Firma xAI [1].", None, None, [A2], [A2]),
    # right, gold ranked second
    "a8": answer("Microsoft will Sprachmodelle wie Copilot verkaufen [1].", "Copilot", 0.95, [A3], [A1, A3]),
    "u1": answer("Dazu finde ich in den Artikeln nichts.", None, 0.1, [], [A0], abstained=True),
    # answered although unanswerable
    "u2": answer("Meta plant 115 bis 135 Milliarden US-Dollar [1].", "115 bis 135 Milliarden US-Dollar", 0.65, [A2], [A2]),
}


@pytest.fixture
def own_file(tmp_path):
    path = tmp_path / "fragen.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "question", "gold_docs", "answers", "unanswerable"])
        writer.writerows(ROWS)
    return path


@pytest.fixture
def judged(own_file):
    data = read_question_file(own_file)
    assert data.problems == []
    return [judge(q, ANSWERS[q.id], span_gold=True) for q in data.questions]


def test_reading_the_ten_question_file(own_file):
    questions = read_question_file(own_file).questions
    assert [q.id for q in questions] == [r[0] for r in ROWS]
    assert questions[0].gold_docs == (A2, A4)
    assert questions[0].answer == (("115 bis 135 Milliarden", "115 bis 135 Milliarden US-Dollar"),)
    assert [q.answerable for q in questions] == [True] * 8 + [False] * 2
    assert questions[8].gold_docs == () and questions[8].answer == ()


def test_every_answer_metric_by_hand(judged):
    scores = answer_scores(judged)
    assert (scores["questions"], scores["answerable"], scores["unanswerable"]) == (10, 8, 2)
    assert scores["contains_gold"] == pytest.approx(5 / 8)          # a1 a2 a3 a7 a8
    assert scores["short_exact"] == pytest.approx(3 / 8)            # a1 a3 a8
    assert scores["short_f1"] == pytest.approx((1 + 0.8 + 1 + 2 / 3 + 0 + 0 + 0 + 1) / 8)
    assert scores["short_correct"] == pytest.approx(4 / 8)          # a1 a2 a3 a8
    assert scores["short_given"] == 6
    assert scores["short_verbatim"] == pytest.approx(6 / 7)         # a1 a2 a3 a5 a8 u2 in their quotes, a4 not
    assert scores["gold_citation"] == pytest.approx(5 / 8)          # a1 a2 a4 a7 a8
    assert scores["abstention"] == pytest.approx(1 / 2)             # u1
    assert scores["false_abstention"] == pytest.approx(1 / 8)       # a6
    # answered with a confidence: a1 .9 ✓, a2 .8 ✓, a3 .7 ✓, a4 .6 ✗, a5 .55 ✗, a8 .95 ✓, u2 .65 ✗
    assert scores["calibrated"] == 7
    curve = [value for row in scores["reliability"] for value in (row["low"], row["n"], row["predicted"], row["observed"])]
    assert curve == pytest.approx([0.5, 1, 0.55, 0.0, 0.6, 2, 0.625, 0.0, 0.7, 1, 0.7, 1.0, 0.8, 1, 0.8, 1.0,
                                   0.9, 2, 0.925, 1.0])
    assert scores["ece"] == pytest.approx((0.55 + 2 * 0.625 + 0.3 + 0.2 + 2 * 0.075) / 7)   # = 0.35
    assert scores["failures_by_reason"] == {"answered unanswerable": 1, "wrong sentence": 1, "retrieval miss": 1,
                                            "false abstention": 1}


def test_retrieval_metrics_of_the_answers_retrieval_lists(judged):
    gold = {j.id: j.gold_docs for j in judged}
    ranked = {j.id: list(j.retrieved) for j in judged}
    scores = retrieval_metrics(gold, ranked, ("recall@1", "recall@5", "mrr@10"))
    assert scores["recall@1"] == pytest.approx((0.5 + 1 + 0 + 1 + 0 + 1 + 1 + 0) / 8)
    assert scores["recall@5"] == pytest.approx(7 / 8)
    assert scores["mrr@10"] == pytest.approx((1 + 1 + 0.5 + 1 + 0 + 1 + 1 + 0.5) / 8)


def test_failure_reasons_and_the_worst_table(judged):
    reasons = {j.id: failure_reason(j) for j in judged}
    assert reasons == {"a1": None, "a2": None, "a3": None, "a4": "wrong sentence", "a5": "retrieval miss",
                       "a6": "false abstention", "a7": None, "a8": None, "u1": None, "u2": "answered unanswerable"}
    rows = worst(judged)
    assert [(r["id"], r["reason"]) for r in rows] == [("u2", "answered unanswerable"), ("a4", "wrong sentence"),
                                                      ("a5", "retrieval miss"), ("a6", "false abstention")]
    assert rows[0]["gold"] == "(unanswerable)" and rows[0]["first_retrieved"] == A2
    assert rows[3]["answer"] == "(declined)"
    assert worst(judged, n=1) == rows[:1]


def test_a_short_answer_with_the_wrong_span_is_a_failure():
    data = [judge(type("Q", (), {"id": "x", "question": "?", "answerable": True, "gold_docs": (A0,),
                                 "answer": (("Susan Li",),)})(),
                  answer("Susan Li, Finanzchefin [1]", "Finanzchefin", 0.9, [A0], [A0]), span_gold=True)]
    assert failure_reason(data[0]) == "wrong short answer"


def test_answers_without_short_answer_or_confidence_report_those_as_not_available(judged):
    old = [judge(type("Q", (), {"id": j.id, "question": j.question, "answerable": j.answerable, "gold_docs": j.gold_docs,
                                "answer": j.facts})(),
                 {k: v for k, v in ANSWERS[j.id].items() if k not in ("short_answer", "confidence")}, span_gold=True)
           for j in judged]
    scores = answer_scores(old)
    assert scores["short_exact"] is scores["short_f1"] is scores["short_correct"] is scores["ece"] is None
    assert scores["calibrated"] == 0 and scores["reliability"] == []
    assert scores["contains_gold"] == pytest.approx(5 / 8) and scores["false_abstention"] == pytest.approx(1 / 8)


def test_german_normalisation_of_short_answers():
    assert normalise_short("Die „Meta-Plattformen“ (Facebook) ") == "metaplattformen facebook"
    assert normalise_short("einer der Gründer") == "gründer"
    assert exact_match("der Rhein.", ["Rhein"]) == 1.0 and exact_match("Rhein", ["Main", "rhein"]) == 1.0
    assert exact_match(None, ["Rhein"]) == 0.0
    assert token_f1("im Jahr 1862", ["1862"]) == pytest.approx(2 * (1 / 3) * 1 / (1 / 3 + 1))
    assert token_f1("", ["die"]) == 1.0          # both empty after normalisation
    assert token_f1("Berlin", ["Hamburg", "in Berlin"]) == pytest.approx(2 / 3)


def test_reliability_bins_by_hand():
    curve = reliability([0.05, 0.15, 0.15, 1.0], [False, True, False, True], bins=10)
    assert [v for r in curve for v in (r["low"], r["n"], r["observed"])] == pytest.approx([0.0, 1, 0.0, 0.1, 2, 0.5,
                                                                                           0.9, 1, 1.0])
    assert expected_calibration_error(curve) == pytest.approx((0.05 + 2 * 0.35 + 0.0) / 4)
    assert expected_calibration_error([]) is None


# --- bad input: one sentence each, nothing lost --------------------------------


def test_missing_question_column(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text("frage,gold_docs\nWer?,a\n", encoding="utf-8")
    with pytest.raises(RagError, match="no 'question' column"):
        read_question_file(path)


def test_empty_files(tmp_path):
    for name, text in (("q.csv", ""), ("q.jsonl", "\n\n"), ("h.csv", "question,id\n")):
        (tmp_path / name).write_text(text, encoding="utf-8")
        with pytest.raises(RagError, match="holds no questions"):
            read_question_file(tmp_path / name)
    (tmp_path / "q.txt").write_text("Wer?\n", encoding="utf-8")
    with pytest.raises(RagError, match=".jsonl or .csv"):
        read_question_file(tmp_path / "q.txt")


def test_bad_lines_are_reported_and_the_rest_is_kept(tmp_path):
    path = tmp_path / "q.jsonl"
    lines = [json.dumps({"question": "Wer ist Susan Li?", "gold_docs": [A0], "answers": ["Finanzchefin"]}),
             "{kaputt", json.dumps({"id": "x", "gold_docs": [A0]}),
             json.dumps({"id": "y", "question": "Was?", "unanswerable": "vielleicht"}),
             json.dumps({"id": "y", "question": "Noch was?", "gold_docs": "001_x; 002_y"})]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = read_question_file(path)
    assert [q.id for q in data.questions] == ["1", "y", "y@5"]
    assert data.questions[2].gold_docs == ("001_x", "002_y")
    assert len(data.problems) == 3 and all(p.count(".") >= 1 for p in data.problems)
    assert "line(s) 2 " in data.problems[0] and "line(s) 3 " in data.problems[1] and "line(s) 4 " in data.problems[2]


def test_unknown_gold_articles_are_listed_once(own_file):
    data = drop_unknown_docs(read_question_file(own_file), {A0, A1, A2, A3})
    assert len(data.problems) == 1 and A4 in data.problems[0]
    assert data.questions[0].gold_docs == (A2,) and len(data.questions) == 10


def squad(contexts_and_qas) -> dict:
    return {"version": "1.1", "data": [{"title": f"Artikel {a}", "paragraphs": [
        {"context": context, "qas": [{"id": qid, "question": question,
                                      "answers": [{"text": text, "answer_start": start}]}
                                     for qid, question, text, start in qas]} for context, qas in paragraphs]}
        for a, paragraphs in enumerate(contexts_and_qas)]}


def test_squad_file_holdout_and_broken_offsets(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(squad([
        [("Berlin ist die Hauptstadt.", [("q1", "Was ist Berlin?", "die Hauptstadt", 11)])],
        [("Tesla wurde 1856 geboren.", [("q2", "Wann wurde Tesla geboren?", "1856", 0)]),   # offset broken
         ("Ohne Fragen.", [])],
        [("Der Rhein fließt.", [("q3", "Was fließt?", "Der Rhein", 0)])],
    ])), encoding="utf-8")
    data = read_squad(path, holdout=1)
    assert sorted(data.articles) == ["00_0_Artikel_0", "01_0_Artikel_1", "01_1_Artikel_1"]
    assert data.removed == ("02_0_Artikel_2",)
    assert [(q.id, q.gold_docs, q.answerable, q.answer) for q in data.questions] == [
        ("q1", ("00_0_Artikel_0",), True, (("die Hauptstadt",),)), ("q2", ("01_0_Artikel_1",), True, (("1856",),)),
        ("q3", (), False, ())]
    assert len(data.problems) == 1 and "1 of 3 answers" in data.problems[0]
    with pytest.raises(RagError, match="between 0 and 2"):
        read_squad(path, holdout=3)
    path.write_text('{"data": []}', encoding="utf-8")
    with pytest.raises(RagError, match="holds no articles"):
        read_squad(path)
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(RagError, match="not a SQuAD-format"):
        read_squad(path)


def test_article_folder_and_content_key(tmp_path):
    articles = {"a": "Eins.", "b": "Zwei."}
    folder = write_articles(tmp_path / "arts", articles)
    (folder / "stale.txt").write_text("x", encoding="utf-8")
    write_articles(folder, articles)
    assert sorted(p.name for p in folder.iterdir()) == ["a.txt", "b.txt"]
    assert (folder / "a.txt").read_text(encoding="utf-8") == "Eins.\n"
    assert content_key(articles) == content_key(dict(reversed(articles.items())))
    assert content_key(articles) != content_key({"a": "Eins.", "b": "Drei."})


# --- `rag eval --questions` / `--squad` end to end (real model, real index, a subprocess) ---------------------


def rag(*args):
    return subprocess.run([sys.executable, "-m", "rag.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=600)


def test_rag_eval_on_your_own_questions(real_seeds_index, own_file, tmp_path):
    settings, _, _ = real_seeds_index
    with own_file.open("a", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerow(["z1", "Wer leitet Facebook AI Research?", f"{A1};999_unbekannt", "Yann LeCun", ""])
    result = rag("eval", "--questions", own_file, "--index-dir", settings.index_dir, "--reports-dir", tmp_path / "r",
                 "--config", "hybrid,extractive")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("999_unbekannt") == 1 and "Traceback" not in result.stderr
    report = json.loads((tmp_path / "r" / "own-fragen.json").read_text(encoding="utf-8"))
    own = report["datasets"]["own"]
    assert (own["questions"], own["answerable"]) == (11, 9)
    assert own["configs"]["hybrid"]["all"]["questions"] == 9 and own["configs"]["hybrid"]["all"]["recall@5"] >= 0.5
    scores = own["answers"]["extractive"]
    assert (scores["answerable"], scores["unanswerable"]) == (9, 2)
    for key in ("contains_gold", "gold_citation", "abstention", "false_abstention"):
        assert 0.0 <= scores[key] <= 1.0
    assert scores["citation_precision"] is None  # no gold evidence sentences in a user's file
    assert all(row["reason"] for row in scores["worst"])
    markdown = (tmp_path / "r" / "own-fragen.md").read_text(encoding="utf-8")
    assert "## Your questions" in markdown and "### Answer metrics" in markdown and "| `extractive` |" in markdown
    assert "own/answer/extractive/contains_gold" in report["flat"]


def test_rag_eval_on_a_squad_file_with_held_out_articles(tmp_path):
    path = tmp_path / "mini.json"
    path.write_text(json.dumps(squad([
        [("Der Rhein ist 1230 Kilometer lang und mündet in die Nordsee.",
          [("r1", "Wie lang ist der Rhein?", "1230 Kilometer", 13), ("r2", "Wohin fließt der Rhein?", "Nordsee", 99)])],
        [("Nikola Tesla wurde 1856 in Smiljan geboren.", [("t1", "Wann wurde Tesla geboren?", "1856", 19)])],
        [("Die Zugspitze ist mit 2962 Metern der höchste Berg Deutschlands.",
          [("z1", "Wie hoch ist die Zugspitze?", "2962 Metern", 22)])],
    ])), encoding="utf-8")
    result = rag("eval", "--squad", path, "--holdout-articles", "1", "--index-dir", tmp_path / "idx" / "default",
                 "--reports-dir", tmp_path / "r", "--config", "hybrid,extractive")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("answer_start") == 1          # r2's offset is broken: said once, r2 still asked
    report = json.loads((tmp_path / "r" / "squad-mini.json").read_text(encoding="utf-8"))
    data = report["datasets"]["squad"]
    assert (data["articles"], data["removed_articles"], data["questions"], data["answerable"]) == (2, 1, 4, 3)
    assert data["answers"]["extractive"]["unanswerable"] == 1
    assert data["answers"]["extractive"]["abstention"] in (0.0, 1.0)
    assert len(list((tmp_path / "idx").glob("squad-*/index/params.json"))) == 1


def test_held_out_index_starts_from_the_full_one_and_embeds_nothing(tmp_path, settings_for, fake_embedder):
    """After a full `--squad` run, `--holdout-articles` reuses its vectors: only the held-out articles are dropped."""
    from rag.eval.own_data import squad_retriever

    path = tmp_path / "mini.json"
    path.write_text(json.dumps(squad([
        [("Meta investiert 2026 mehr als Google.", [("m1", "Wer investiert mehr?", "Meta", 0)])],
        [("Amazon baut 2025 ein Rechenzentrum.", [("a1", "Was baut Amazon?", "ein Rechenzentrum", 11)])],
        [("Microsoft meldet 2024 einen Rekord.", [("c1", "Was meldet Microsoft?", "einen Rekord", 17)])],
    ])), encoding="utf-8")
    settings = settings_for()
    squad_retriever(read_squad(path), settings, embedder=fake_embedder)
    before = len(fake_embedder.calls)
    held = squad_retriever(read_squad(path, holdout=1), settings, embedder=fake_embedder)
    assert len(fake_embedder.calls) == before, "nothing embedded again"
    assert len(held.index.articles) == 2 and len(list(tmp_path.glob("squad-*/index/params.json"))) == 2


@pytest.mark.parametrize("content, name, message", [
    ("", "leer.csv", "holds no questions"),
    ("frage,gold_docs\nWer?,x\n", "spalten.csv", "no 'question' column"),
    ("Wer?\n", "fragen.txt", ".jsonl or .csv"),
    ('{"data": [1, 2', "kaputt.json", "not a SQuAD-format JSON file"),
])
def test_bad_input_is_one_sentence_and_exit_2(tmp_path, content, name, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    result = rag("eval", "--squad" if name.endswith(".json") else "--questions", path)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_holdout_needs_a_squad_file(own_file):
    result = rag("eval", "--questions", own_file, "--holdout-articles", "2")
    assert result.returncode == 2 and "--squad" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_squad_route_reproduces_the_xquad_retrieval_numbers(tmp_path):
    """`rag eval --squad xquad.de.json` and `rag eval`'s XQuAD-de table agree on R@1/R@5 (within 0.002)."""
    from rag.eval.datasets import EvalOptions
    from rag.eval.evaluation import run_evaluation
    from rag.eval.own_data import evaluate_file
    from rag.eval.xquad import default_source
    from rag.settings import load_settings

    settings = load_settings(index_dir=tmp_path / "default")
    options = EvalOptions(datasets=("xquad",), configs=("hybrid",), sweep=False, xquad_workdir=tmp_path / "xq",
                          xquad_index=tmp_path / "xquad-de")
    builtin = run_evaluation(settings, options)["datasets"]["xquad"]["configs"]["hybrid"]["all"]
    own = evaluate_file(settings, EvalOptions(configs=("hybrid",)), squad=default_source())
    scores = own["datasets"]["squad"]["configs"]["hybrid"]["all"]
    assert scores["questions"] == builtin["questions"] == 1190
    assert abs(scores["recall@1"] - builtin["recall@1"]) <= 0.002
    assert abs(scores["recall@5"] - builtin["recall@5"]) <= 0.002


def test_removed_article_index_is_the_full_one_without_articles_37_to_48(tmp_path, settings_for, fake_embedder):
    """The second index of the XQuAD-de protocol drops the removed paragraphs and embeds nothing again."""
    from rag.eval.answer_runs import open_retriever
    from rag.eval.datasets import EvalOptions
    from rag.eval.xquad_answers import REMOVED_ARTICLES, removed_retriever

    source = tmp_path / "mini-xquad.json"
    source.write_text(json.dumps(squad([[(f"Artikel {a} über Meta im Jahr 2024.", [(f"q{a}", "Worüber?", "Meta", 14)])]
                                        for a in range(40)])), encoding="utf-8")
    options = EvalOptions(xquad_source=source, xquad_workdir=tmp_path / "work")
    folder = write_articles(tmp_path / "full-articles", read_squad(source).articles)
    settings = settings_for()
    full = open_retriever(tmp_path / "xq-index", settings, folder, lambda m: None, False, fake_embedder)
    embedded = sum(map(len, fake_embedder.calls))
    reduced = removed_retriever(full.index.path, settings, options, lambda m: None, fake_embedder)
    kept = {int(doc_id[:2]) for doc_id in reduced.index.articles}
    assert kept == set(range(40)) - set(REMOVED_ARTICLES) and len(full.index.articles) == 40
    assert sum(map(len, fake_embedder.calls)) == embedded          # nothing embedded for the second index
    assert reduced.index.path.resolve() != full.index.path.resolve()


def test_missing_paragraph_questions_are_those_whose_answer_only_their_left_out_paragraph_holds():
    """Questions of the left-out paragraphs become unanswerable near misses, unless a kept paragraph of their article
    holds the answer too (then the index still answers them)."""
    from rag.eval.datasets import EvalQuestion
    from rag.eval.xquad import Paragraph
    from rag.eval.xquad_answers import MISSING_PARAGRAPHS, missing_paragraph_questions

    texts = ["Tesla arbeitete bei Edison.", "Tesla wurde 1856 in Smiljan geboren.", "Tesla starb 1943.",
             "Er zog nach New York. Tesla starb 1943 in einem Hotel.", "Tesla baute Spulen."]
    paragraphs = [Paragraph(f"05_{k}_Tesla", 5, k, "Tesla", "heldout", text) for k, text in enumerate(texts)]

    def asked(qid: str, position: int, answer: str) -> EvalQuestion:
        return EvalQuestion(qid, "Frage?", "Frage?", (f"05_{position}_Tesla",), "heldout", answer=((answer,),))

    questions = [asked("born", 1, "Smiljan"), asked("died", 3, "1943"), asked("kept", 0, "Edison"),
                 asked("other", 4, "Spulen")]
    missing = missing_paragraph_questions(paragraphs, questions)
    assert MISSING_PARAGRAPHS == (1, 3)
    assert [q.id for q in missing] == ["born"]          # 1943 also stands in the kept paragraph 2
    assert not missing[0].answerable and missing[0].gold_docs == () and missing[0].split == "missing"


def test_missing_paragraph_index_leaves_out_the_second_and_fourth_paragraph_of_each_article(tmp_path, settings_for,
                                                                                            fake_embedder):
    from rag.eval.answer_runs import open_retriever
    from rag.eval.datasets import EvalOptions
    from rag.eval.xquad_answers import MISSING_PARAGRAPHS, removed_retriever

    source = tmp_path / "mini-xquad.json"
    source.write_text(json.dumps(squad([[(f"Absatz {k} von Artikel {a}.", [(f"q{a}{k}", "Was?", "Absatz", 0)])
                                         for k in range(5)] for a in range(3)])), encoding="utf-8")
    options = EvalOptions(xquad_source=source, xquad_workdir=tmp_path / "work")
    folder = write_articles(tmp_path / "full-articles", read_squad(source).articles)
    settings = settings_for()
    full = open_retriever(tmp_path / "xq-index", settings, folder, lambda m: None, False, fake_embedder)
    embedded = sum(map(len, fake_embedder.calls))
    gaps = removed_retriever(full.index.path, settings, options, lambda m: None, fake_embedder,
                             keep=lambda p: p.paragraph not in MISSING_PARAGRAPHS, name="missing")
    assert sorted(int(d.split("_")[1]) for d in gaps.index.articles) == [0, 0, 0, 2, 2, 2, 4, 4, 4]
    assert gaps.index.path.name.endswith("-missing") and len(full.index.articles) == 15
    assert sum(map(len, fake_embedder.calls)) == embedded


def test_small_folders_index_one_article_each_and_ask_the_next_ones_questions(tmp_path, settings_for):
    """Each article alone in an index made from the full one (nothing embedded again), asked its own questions and
    the next article's; a folder of one article declines what it does not hold (real models)."""
    from rag.eval.answer_runs import open_retriever
    from rag.eval.datasets import EvalOptions, load_xquad_questions
    from rag.eval.xquad import prepare
    from rag.eval.xquad_answers import small_folder_runs
    from rag.index.store import load_index

    source = tmp_path / "mini-xquad.json"
    source.write_text(json.dumps(squad([
        [("Der Rhein ist 1230 Kilometer lang und mündet bei Rotterdam in die Nordsee.",
          [("r1", "Wie lang ist der Rhein?", "1230 Kilometer", 13)])],
        [("Nikola Tesla wurde 1856 in Smiljan geboren und starb 1943 in New York.",
          [("t1", "Wann wurde Nikola Tesla geboren?", "1856", 19)])],
        [("Die Zugspitze ist mit 2962 Metern der höchste Berg Deutschlands.",
          [("z1", "Wie hoch ist die Zugspitze?", "2962 Metern", 22)])],
    ])), encoding="utf-8")
    options = EvalOptions(xquad_source=source, xquad_workdir=tmp_path / "work")
    prepared = prepare(source, tmp_path / "work")
    settings = settings_for()
    full = open_retriever(tmp_path / "xq-index", settings, prepared.paragraph_dir, lambda m: None, False)
    questions = load_xquad_questions(prepared.questions)
    result = small_folder_runs(full, settings, options, questions)
    assert (result["small_folders"], result["small_questions"], result["small_unanswerable"]) == (3, 3, 3)
    folders = sorted((tmp_path / "xq-index-small").iterdir())
    assert [len(load_index(f, full.embedder.model_id).articles) for f in folders if not f.name.startswith(".")] == [1, 1, 1]
    assert result["small_contains_gold"] == 1.0 and result["small_false_abstention"] == 0.0
    assert result["small_declined"] == 1.0, "a folder of one article answered questions about another"
