import pytest

from rag.lang import de
from rag.lang.de import (MONTH_NUMBERS, format_date, looks_english, month_year, range_partners, stem_bases,
                         tokenize)


def test_format_date():
    assert format_date("2026-01-28") == "28. Januar 2026"
    assert format_date("2025-07") == "Juli 2025"
    assert format_date(None) == "ohne Datum"
    assert format_date("2026-01-28", inferred=True) == "28. Januar 2026 (Datum erschlossen)"
    assert format_date("irgendwann") == "irgendwann"


def test_month_year_and_month_numbers():
    assert month_year("2026-01-28") == "Januar 2026"
    assert month_year("2024") == "2024"
    assert month_year(None) is None
    assert MONTH_NUMBERS["jänner"] == MONTH_NUMBERS["januar"] == 1 and MONTH_NUMBERS["dezember"] == 12


def test_tokenize_keeps_figures_and_spells_out_scale_abbreviations():
    assert tokenize("14,3 Mrd. Dollar") == ["14,3", *tokenize("Milliarden"), *tokenize("Dollar")]
    assert tokenize("die und der") == []


def test_english_questions_are_told_from_german_ones_with_english_looking_words():
    for german in ("In welchem Jahr wurde die Brücke in Köln gebaut?", "Was wurde in der Fabrik produziert?",
                   "Wie viel will der Konzern investieren?", "Welches Prinzip wurde in The Art of War dargestellt?"):
        assert not looks_english(german), german
    for english in ("How much did the company invest in 2024?", "Who has been running the lab for a decade?",
                    "What was the revenue of the group?", "Who won Super Bowl XLIX?",
                    "Where is Brazil ranked in global soybean production?", "Why do some people protest?"):
        assert looks_english(english), english
    # one English word is not enough unless the question starts with it
    assert not looks_english("Wie viel verdient der Who-Sänger?") and not looks_english("Wann lief Doctor Who an?")


def test_a_compound_splits_into_a_known_modifier_and_head():
    """The head is the longest known ending (four letters or more); the modifier, less a linking element, must be
    known too, so that a prefix ("ver-antwort") or an unknown first part does not split the word."""
    known = {"quartal", "umsatz", "arbeit", "markt", "finanz", "chefin", "antwort", "gewinn"}
    lookup = lambda stems: [s for s in stems if s in known]  # noqa: E731
    assert de.compound_parts("quartalsumsatz", lookup) == ("quartal", "umsatz")
    assert de.compound_parts("arbeitsmarkt", lookup) == ("arbeit", "markt")
    assert de.compound_parts("finanzchefin", lookup) == ("finanz", "chefin")
    assert de.compound_parts("verantwort", lookup) == ()
    assert de.compound_parts("sonnengewinn", lookup) == ()
    assert de.compound_parts("umsatz", lookup) == ()


def test_range_partners_pair_the_ends_of_each_range_of_figures():
    text = "zwischen 115 und 135 Milliarden, 2025 bei 64 bis 72 Milliarden, 60-65 Prozent, 5 to 7; allein 80 Milliarden"
    partners = range_partners(text)
    assert partners["115"] == {"135"} and partners["72"] == {"64"} and partners["65"] == {"60"} and partners["7"] == {"5"}
    assert "80" not in partners and "2025" not in partners


@pytest.mark.parametrize("question, dated", [
    ("Wie viel investiert Meta dieses Jahr?", "Wie viel investiert Meta 2026?"),
    ("Wie viel investiert Meta im laufenden Jahr?", "Wie viel investiert Meta im 2026?"),
    ("Wie hoch war der Gewinn im vergangenen Jahr?", "Wie hoch war der Gewinn im 2025?"),
    ("Was plant Meta nächstes Jahr?", "Was plant Meta 2027?"),
    ("Wie viel verdiente Meta vor zwei Jahren?", "Wie viel verdiente Meta 2024?"),
    ("How much will Meta spend this year?", "How much will Meta spend 2026?"),
    # a named year keeps the question's phrases to itself; no relative year, nothing changes
    ("Wie hoch war der Verlust im letzten Quartal 2025?", "Wie hoch war der Verlust im letzten Quartal 2025?"),
    ("Was verdiente Meta 2024 im Vergleich zum Vorjahr?", "Was verdiente Meta 2024 im Vergleich zum Vorjahr?"),
    ("Wer leitet Meta?", "Wer leitet Meta?"),
])
def test_a_question_s_relative_years_become_the_years_they_mean_today(question, dated):
    assert de.dated_question(question, "2026-12-02") == dated


@pytest.mark.parametrize("question, noun", [
    ("Wie viele Punkte gab die Verteidigung ab?", "Punkte"),  # the question word opening the question, capitalised
    ("Wie viele erzwungene Fumbles hatte Thomas Davis?", "Fumbles"),  # past an inflected adjective
    ("In welchem Jahr starb er?", "Jahr"),
    ("Welche Art von Schule wurde anerkannt?", "Schule"),
    ("Wie hoch war der operative Verlust von Reality Labs?", "Verlust"),  # the measure of "wie hoch"
    ("Wie viel investiert Meta 2026?", None),  # a verb, not an adjective: no noun is asked for
    ("Wer leitet die Bahn?", None),
])
def test_asked_noun_is_the_noun_whose_value_the_question_asks_for(question, noun):
    assert de.asked_noun(question) == noun


def test_stem_bases_strip_endings_and_a_participles_ge_most_likely_first():
    assert stem_bases("steckt") == ("steckt", "steck", "stec")
    assert stem_bases("gesteckt")[:2] == ("gesteckt", "gesteck") and "steck" in stem_bases("gesteckt")
    assert stem_bases("investiert")[-1] == "investi"
    assert stem_bases("geld") == ("geld",)  # no base shorter than four letters
    assert stem_bases("gehalt")[0] == "gehalt"


@pytest.mark.parametrize("question, overview", [
    ("Was berichten die Artikel über Llama 4?", True),
    ("Was steht in den Artikeln über Threads?", True),
    ("Was schreiben die Medien über den Streik?", True),
    ("What do the sources say about the merger?", True),
    ("Was sagen Analysten über Meta?", False),  # what someone said is one fact
    ("Wie viel investiert Meta 2026?", False),
])
def test_an_overview_question_asks_what_the_articles_say(question, overview):
    assert bool(de.OVERVIEW_QUESTION.search(question)) is overview


@pytest.mark.parametrize("text, pairs", [
    ("Wer ist die Finanzchefin von Meta?", [("Finanzchefin", "Meta")]),
    ("Während Meta-Chef Zuckerberg sprach, schwieg die Finanzchefin von Microsoft.",
     [("Chef", "Meta"), ("Finanzchefin", "Microsoft")]),
    ("Metas Finanzchefin Susan Li", [("Finanzchefin", "Meta")]),
    ("Wer ist der Trainer der Broncos?", [("Trainer", "Broncos")]),
    ("KI-Chef Yann LeCun", []),  # two capitals before a hyphen name a field, not an owner
    ("Finanzchefin Susan Li betonte", []),
])
def test_a_noun_is_bound_to_its_owner_by_hyphen_genitive_or_von(text, pairs):
    assert de.owned_nouns(text) == pairs


def test_how_many_counts_a_noun_and_money_or_a_share_is_told_apart():
    assert de.counted_noun("Wie viele Mitarbeiter hat Scale AI?") == "mitarbeiter"
    assert de.counted_noun("Wie viele Milliarden Dollar investiert Meta?") is None  # money counts money
    assert de.counted_noun("Wie viel investiert Meta?") is None
    assert de.names_money("14,3 Milliarden Dollar") and de.names_money("5 $") and not de.names_money("7 Prozent")
    assert de.names_share_or_money("von über 90%") and not de.names_share_or_money("im Juni 2021")
