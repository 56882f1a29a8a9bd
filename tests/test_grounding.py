"""Grounding checks: markers, figures with German/English notation and scale words, exact quotes."""

from __future__ import annotations

import pytest

from rag.answer.grounding import check_answer, check_quotes, figures, markers
from rag.schema import Citation

PASSAGES = {
    1: "[1] (28. Januar 2026) Für das laufende Jahr stellte Meta Kapitalinvestitionen zwischen 115 und 135 "
       "Milliarden Dollar in Aussicht.",
    2: "[2] (1. Februar 2026) Der Quartalsgewinn legte um neun Prozent auf 22,77 Milliarden Dollar zu.",
    3: "[3] (Juli 2025) 14,3 Milliarden Dollar für Scale-AI und dessen CEO Alexandr Wang",
}


def values(text: str) -> list[tuple[float, float | None]]:
    return [(min(f.values), f.scale) for f in figures(text)]


@pytest.mark.parametrize("text, expected", [
    ("14,3 Mrd. Dollar", [(14.3, 1e9)]),
    ("14.3 Milliarden", [(14.3, 1e9)]),
    ("115 bis 135 Milliarden", [(115.0, 1e9), (135.0, 1e9)]),
    ("sechs Milliarden Dollar", [(6.0, 1e9)]),
    ("neun Prozent und 9 %", [(9.0, None), (9.0, None)]),
    ("rund eine Billion Dollar", [(1.0, 1e12)]),
    ("one billion dollars", [(1.0, 1e9)]),
    ("am 28.01.2026", [(28.0, None), (1.0, None), (2026.0, None)]),
    ("Q4 2025 [2]", [(2025.0, None)]),
    ("eine Frage an zwei Leute", []),
])
def test_figures_are_read_with_their_scale(text, expected):
    assert values(text) == expected


@pytest.mark.parametrize("answer", [
    "Meta plant 2026 Investitionen von 115 bis 135 Mrd. Dollar [1].",
    "Der Gewinn stieg um 9 % auf 22.77 Milliarden Dollar [2].",
    "Am 1. Februar 2026 meldete Meta einen Gewinn von 22,77 Mrd. Dollar [2].",
    "Meta zahlte 14,3 Milliarden Dollar [3] und plant 115 bis 135 Milliarden [1].",
    "Meta zahlte 14.300 Millionen Dollar [3].",
])
def test_backed_answers_pass(answer):
    report = check_answer(answer, PASSAGES)
    assert report.passed, report.problems
    assert report.figures_checked > 0


@pytest.mark.parametrize("answer, problem", [
    ("Meta plant 115 bis 140 Milliarden Dollar [1].", "„140“"),
    ("Der Gewinn stieg auf 22,77 Millionen Dollar [2].", "„22,77“"),
    ("Meta zahlte 14,3 Milliarden Dollar [1].", "„14,3“"),  # the figure is real, but not in the cited passage
    ("Meta zahlte 14,3 Milliarden Dollar [7].", "[7]"),
    ("Meta plant hohe Investitionen.", "keine Quelle"),
    ("Der Gewinn stieg 2027 um neun Prozent [2].", "„2027“"),
])
def test_unbacked_answers_fail_with_a_reason(answer, problem):
    report = check_answer(answer, PASSAGES)
    assert not report.passed
    assert any(problem in p for p in report.problems), report.problems


def test_markers_in_order_of_use():
    assert markers("a [2] b [1] c [2]") == [2, 1]


def test_quotes_must_be_exact_at_their_offsets():
    text = "Erster Satz. Zweiter Satz mit 14,3 Milliarden."
    good = Citation(1, "a", "T", None, "Zweiter Satz mit 14,3 Milliarden.", 13, len(text), 1.0)
    shifted = Citation(2, "a", "T", None, "Zweiter Satz mit 14,3 Milliarden.", 12, len(text) - 1, 1.0)
    unknown = Citation(3, "b", "T", None, "x", 0, 1, 1.0)
    problems = check_quotes([good, shifted, unknown], {"a": text})
    assert len(problems) == 2 and problems[0].startswith("[2]") and problems[1].startswith("[3]")


def test_answer_must_keep_the_best_evidence():
    best = "Für das laufende Jahr stellte Meta Kapitalinvestitionen zwischen 115 und 135 Milliarden Dollar in Aussicht."
    kept = check_answer("Meta plant 115 bis 135 Mrd. Dollar [1].", PASSAGES, share_figures=[best])
    assert kept.passed
    swapped = check_answer("Der Gewinn lag bei 22,77 Milliarden Dollar [2].", PASSAGES, share_figures=[best])
    assert not swapped.passed and "übergeht die Zahlen" in swapped.problems[0]
    named = check_answer("Die Finanzchefin ist Susan Li [3].", PASSAGES, mention=[["Li", "Susan"]])
    other = check_answer("Die Finanzchefin ist Amy Hood [3].", PASSAGES, mention=[["Li", "Susan"]])
    assert named.passed and not other.passed and "Li oder Susan" in other.problems[0]


def test_answer_must_give_every_figure_of_the_best_evidence_but_years_and_dates():
    best = "Am 28. Januar 2026 stellte Meta für 2026 Kapitalinvestitionen zwischen 115 und 135 Milliarden Dollar in Aussicht."
    whole = check_answer("Meta plant 2026 115 bis 135 Mrd. Dollar [1].", PASSAGES, all_figures=[best])
    assert whole.passed, whole.problems
    cut = check_answer("Meta plant 2026 bis zu 135 Milliarden Dollar [1].", PASSAGES, all_figures=[best])
    assert not cut.passed and "115" in cut.problems[0]
