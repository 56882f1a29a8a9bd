"""Whose role a sentence names: the asked noun of another name is told apart from the asked one's and from an
unbound mention."""

from rag.answer.owners import (Owned, another_ones, asked_names, clause_around, elsewhere, mentions, names_any,
                               question_owned, someone_elses)
from rag.lang.dictionary import Dictionary


def test_a_question_binds_its_noun_to_a_name_an_english_one_by_its_translations():
    meta = frozenset({"meta"})
    assert question_owned("Wer ist die Finanzchefin von Meta?") == (Owned(frozenset({"finanzchefin"}), meta),)
    assert question_owned("Wer ist der Chef des Konzerns?") == ()  # a common noun owns nothing here
    assert question_owned("Who is the CFO of Meta?") == ()  # without a dictionary an English noun is not read
    dictionary = Dictionary({"cfo": ["Finanzchef", "Finanzchefin"]})
    cfo = (Owned(frozenset({"finanzchef", "finanzchefin"}), meta),)
    assert question_owned("Who is Meta's CFO?", dictionary) == cfo
    assert question_owned("Who is the CFO of Meta?", dictionary) == cfo


def test_a_mention_of_another_names_noun_is_elsewhere_an_unbound_or_the_asked_ones_is_not():
    owned = Owned(frozenset({"finanzchefin"}), frozenset({"meta"}))
    assert elsewhere("Während Meta-Chef Zuckerberg sprach, schwieg die Finanzchefin von Microsoft.", owned)
    assert not elsewhere("Finanzchefin Susan Li betonte das.", owned)
    assert not elsewhere("Metas Finanzchefin Susan Li und die Finanzchefin von Microsoft.", owned)
    assert not elsewhere("Die Finanzchefin von Microsoft lobte Metas Finanzchefin.", owned)
    assert not elsewhere("Der Umsatz stieg.", owned) and mentions("Der Umsatz stieg.", owned) == 0
    assert not elsewhere("Die Finanzchefin von Microsoft sprach.", owned)  # Meta unnamed: not judged
    chef = Owned(frozenset({"chef"}), frozenset({"openai"}))
    assert elsewhere("Meta-Chef Mark Zuckerberg will OpenAI überflügeln.", chef)
    assert mentions("Der Konzernchef und der Meta-Chef", chef) == 2  # a compound ending in the noun names it too


def test_a_figure_belongs_to_who_acts_in_its_clause():
    quote = ("Zum Vergleich: Microsoft will 2025 80 Milliarden Dollar investieren, Meta plant mit 4,9 Milliarden "
             "Dollar Ausgaben für Rechenzentren.")
    clause = clause_around(quote, "4,9 Milliarden Dollar")  # a decimal comma ends no clause
    assert clause == ", Meta plant mit 4,9 Milliarden Dollar Ausgaben für Rechenzentren."
    assert clause_around(quote, "100 Millionen") is None
    assert someone_elses(clause, ["Microsoft"]) and not someone_elses(clause, ["Meta"])
    assert not someone_elses(", der Mädchen in den Küstengebieten von Malindi", ["Kenia"])  # a place, no actor
    assert not someone_elses("Der Konzern plant 40 Millionen Euro.", ["Microsoft"])  # no one named: not judged
    assert not someone_elses("Meta plant mit 5 Milliarden für KI.", ["KI"])  # an abbreviation names no one
    assert another_ones(quote, "4,9 Milliarden Dollar", ["Microsoft"]) and not another_ones(quote, "80 Milliarden",
                                                                                          ["Microsoft"])
    assert not another_ones(quote, "100 Millionen", ["Microsoft"])  # not in the quote: nothing to judge


def test_the_names_a_question_asks_about_in_german_and_english():
    assert asked_names("Wie viel will Microsoft 2026 investieren?") == ["Microsoft"]
    assert asked_names("How much did Google's parent spend in Q4 2024?") == ["Google"]
    assert names_any("Metas Umsatz stieg.", ["Meta"]) and not names_any("Der Umsatz stieg.", ["Meta"])
