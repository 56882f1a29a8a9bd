"""Time is resolved before it is compared: relative phrases read against the publication date, figures tied to the
time named in their own clause, years of any century."""

import pytest

from rag.answer.facts import figure_years, quarter_periods, sentence_time, sentence_years, time_mentions


@pytest.mark.parametrize("sentence, published, years", [
    ("Für das laufende Jahr plant Meta Investitionen von 115 bis 135 Milliarden Dollar.", "2026-01-28", {2026}),
    ("In diesem Jahr soll der Umsatz steigen.", "2024-10-31", {2024}),
    ("Nächstes Jahr werden die Kosten erheblich wachsen.", "2024-10-31", {2025}),
    ("Im Vorjahr lag der Gewinn niedriger.", "2026-01-28", {2025}),
    ("Vor zwei Jahren begann der Umbau.", "2026-01-28", {2024}),
    ("Im vergangenen Quartal stieg der Umsatz.", "2026-01-28", {2025}),
    ("Die Stadt wurde 1862 gegründet.", None, {1862}),
    # without a publication date a relative phrase is not guessed
    ("Für dieses Jahr rechnet Meta mit höheren Kosten.", None, set()),
    # a comparison with the year before is not what the sentence speaks about
    ("Der Umsatz stieg im Jahr 2025 auf 48 Milliarden nach 40 Milliarden vor einem Jahr.", "2026-01-28", {2025}),
    # counts are not years
    ("Dort arbeiten 1500 Menschen für 2000 Euro im Monat.", None, set()),
])
def test_sentence_years(sentence, published, years):
    assert sentence_years(sentence, published) == years


@pytest.mark.parametrize("question, periods", [
    ("Um wie viel Prozent ist der Umsatz im vierten Quartal 2024 gewachsen?", {"2024-q4"}),
    # a quarter named by the edge of its year, in a text that speaks of quarters
    ("Wie viel hat Microsoft im Quartal Ende 2024 investiert?", {"2024-q4"}),
    ("Wie hat sich der Quartalsgewinn von Ende 2024 bis Ende 2025 verändert?", {"2024-q4", "2025-q4"}),
    ("War der Quartalsumsatz Ende 2025 höher als im dritten Quartal 2024?", {"2024-q3", "2025-q4"}),
    ("What was the quarterly revenue at the start of 2025?", {"2025-q1"}),
    # ordinals in every case, quarters named by their season, the last of a named year
    ("Welchen Umsatz erwartet Meta für das erste Quartal 2026?", {"2026-q1"}),
    ("Wie stark stiegen die Ausgaben im Sommerquartal 2024?", {"2024-q3"}),
    ("Wie groß war der Verlust im letzten Quartal 2025?", {"2025-q4"}),
    ("What was the loss in the last quarter of 2025?", {"2025-q4"}),
    # the edge of a year in a question about no quarter is a time of year
    ("Wie viel Umsatz machte der Konzern Ende 2024?", set()),
])
def test_quarter_periods(question, periods):
    assert quarter_periods(question, None) == periods


def test_quarters_are_read_against_the_publication_date():
    [last] = time_mentions("Im vergangenen Quartal stieg der Umsatz.", "2026-01-28")
    assert (last.year, last.quarter, last.kind) == (2025, 4, "relative")
    [fourth] = time_mentions("Im vierten Quartal stieg der Umsatz.", "2026-01-28")
    assert (fourth.year, fourth.quarter) == (2025, 4)
    [third] = time_mentions("Im dritten Quartal 2024 stieg der Umsatz.", None)
    assert (third.year, third.quarter, third.kind) == (2024, 3, "explicit")


def test_a_figure_belongs_to_the_time_of_its_clause():
    sentence = ("Für dieses Jahr rechnet Meta nun mit Kosten zwischen 37 und 40 Milliarden Dollar – und bereitet die "
                "Anleger darauf vor, dass sie 2025 noch „erheblich“ wachsen werden.")
    assert figure_years(sentence, "2024-10-31") == {"37": {2024}, "40": {2024}}
    assert sentence_years(sentence, "2024-10-31") == {2024, 2025}
    baseline = "Im vierten Quartal 2025 stieg der Umsatz auf 48,4 Milliarden Dollar nach 40,1 Milliarden vor einem Jahr."
    assert figure_years(baseline, None) == {"48,4": {2025}, "40,1": {2024}}
    undated = "Der Bereich verbuchte einen Verlust von 4,9 Milliarden Dollar nach 3,74 Milliarden vor einem Jahr."
    assert figure_years(undated, "2024-10-31") == {"4,9": set(), "3,74": {2023}}  # the year before dates its figure only
    # a quote of two sentences: each figure is its own sentence's year's, whichever year stands nearer
    pair = "2019 verkaufte Nordlicht 300 Segelboote. 2021 verkaufte Nordlicht 450 Segelboote."
    assert figure_years(pair, "2022-02-10") == {"300": {2019}, "450": {2021}}


def test_sentence_time_resolves_years_and_quarters_without_the_baseline():
    text = "Im vergangenen Quartal stieg der Umsatz auf 40 Milliarden Dollar nach 30 Milliarden vor einem Jahr."
    assert sentence_time(text, "2024-10-31") == ({2024}, {"2024-q3"})
    assert sentence_time("Für dieses Jahr rechnet Meta mit Kosten.", None) == (frozenset(), frozenset())
