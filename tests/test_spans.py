"""Short answers: typed candidates, verbatim spans, explanation questions, years of any century, the trained model."""

import json
import math

import numpy as np
from hypothesis import given, settings, strategies as st

from rag.answer import spans
from rag.answer.reader import Reading
from rag.answer.spans import (FEATURES, MODEL_PATH, candidates, load_span_model, question_kind, short_answer,
                              span_features, word_spans)

META = "Für das laufende Jahr 2026 plant Meta Kapitalinvestitionen in Höhe von 115 bis 135 Milliarden US-Dollar."


def _texts(quote: str) -> set[str]:
    return {quote[c.start:c.end] for c in candidates(quote)}


def test_typed_candidates_are_among_the_spans():
    assert "115 bis 135 Milliarden US-Dollar" in _texts(META)
    assert "18. September 1947" in _texts("Der Vertrag wurde am 18. September 1947 in Paris unterzeichnet.")
    assert "rund 39 Milliarden Dollar" in _texts("Der Gewinn lag bei rund 39 Milliarden Dollar.")
    assert "Louis-Joseph de Montcalm" in _texts("Die Truppen führte Generalmajor Louis-Joseph de Montcalm an.")
    assert "John C. Messenger" in _texts("Übersetzt wurde die Hymne von John C. Messenger.")
    assert "3:08" in _texts("Denver führte mit 3:08 verbleibenden Minuten.")
    scores = _texts("Leverkusen besiegte Bremen mit 5:0 und Bayern mit 3:1.")  # a score is one word
    assert {"5:0", "3:1"} <= set(scores) and not {"5", "0", "3", "1"} & set(scores)


def test_spans_stop_at_clause_punctuation_and_never_end_on_an_article():
    texts = _texts("Er kam (wie erwartet) spät; sie blieb in der Stadt.")
    assert not any(";" in t or "(" in t or ")" in t for t in texts)
    assert not any(t.split()[-1] in ("der", "in") for t in texts)


def test_spans_never_cross_a_line_break():
    texts = _texts("Volkswagen: Gewinn bricht ein\n30. Oktober 2025 meldete der Konzern einen Verlust.")
    assert "30. Oktober 2025" in texts and not any("\n" in t for t in texts)


def test_figures_dates_and_names_answer_their_questions(reader):
    assert short_answer("Wie viel investiert Meta 2026?", META, reader).text == "115 bis 135 Milliarden US-Dollar"
    quote = "Finanzchefin Susan Li sagte, die Ausgaben würden weiter steigen."
    assert short_answer("Wer ist Finanzchefin von Meta?", quote, reader).text == "Susan Li"
    gain = short_answer("Wie hoch war der Gewinn?", "Der Gewinn lag bei rund 39 Milliarden Dollar.", reader)
    assert gain.text.endswith("39 Milliarden Dollar")


def test_a_dateline_in_the_quote_is_never_the_answer(reader):
    """A heading quoted with the first sentence holds the dateline between them: the place the report came from
    is no answer to who leads the company (it was "Berlin")."""
    quote = ("Deutsche Bahn: Pünktlichkeit sinkt auf Rekordtief\n\nBerlin – Die Deutsche Bahn hat im vergangenen "
             "Jahr so wenige Fernzüge pünktlich ans Ziel gebracht wie seit Jahrzehnten nicht mehr.")
    span = short_answer("Wer leitet die Deutsche Bahn?", quote, reader)
    assert span is None or "Berlin" not in span.text
    named = quote.replace("Die Deutsche Bahn hat", "Die Deutsche Bahn unter Evelyn Palla hat")
    assert short_answer("Wer leitet die Deutsche Bahn?", named, reader).text == "Evelyn Palla"


def test_a_piece_of_a_quoted_title_grows_to_the_whole_title(reader):
    for marks in ('"{}"', "„{}“", "»{}«"):
        title = marks.format("Bummel durch Europa")
        quote = f"Der Schriftsteller Mark Twain beschrieb die Stadt in seinem Buch {title}."
        assert short_answer("Wie heißt das Buch von Mark Twain?", quote, reader).text == "Bummel durch Europa"
    # a long quotation is no title: a span inside it stays as it is
    speech = "„Da KI effizienter und zugänglicher wird, werden wir eine steigende Nachfrage erleben“, sagte Nadella."
    span = short_answer("Was erwartet Nadella?", speech, reader)
    assert span is None or span.text != speech[1:speech.index("“")]


def test_an_english_question_s_german_terms_join_the_span_features_but_not_the_reader(reader, monkeypatch):
    """``terms`` (the German words an English question was read with) count as the question's words for the span
    features; the reader still reads the question as asked."""
    seen = {}
    real_read, real_choose = type(reader).read_beside, spans.choose_span
    monkeypatch.setattr(type(reader), "read_beside",
                        lambda self, q, *a: seen.setdefault("read", q) and real_read(self, q, *a))
    monkeypatch.setattr(spans, "choose_span",
                        lambda q, *a, **k: seen.setdefault("features", q) and real_choose(q, *a, **k))
    quote = "Der Bereich verbuchte einen operativen Verlust von knapp 4,9 Milliarden Dollar."
    span = short_answer("What loss did the unit report?", quote, reader, terms="verlust")
    assert seen == {"read": "What loss did the unit report?", "features": "What loss did the unit report? verlust"}
    assert span is None or span.text in quote


def test_years_before_1900_are_years(reader):
    quote = "Die Firma wurde 1862 in Berlin von Werner Siemens gegründet."
    assert short_answer("Wann wurde die Firma gegründet?", quote, reader).text == "1862"
    assert question_kind("In welchem Jahr wurde die Firma gegründet?") == "when"


def test_explanation_questions_get_no_short_answer(reader):
    quote = "Der Umsatz stieg, weil die Werbung stärker lief."
    assert short_answer("Warum stieg der Umsatz?", quote, reader) is None
    assert short_answer("Wie funktioniert die Werbung?", quote, reader) is None
    assert short_answer("Why did revenue grow?", quote, reader) is None
    assert short_answer("Wann?", "", reader) is None


def test_a_development_over_time_gets_no_short_answer_but_who_developed_something_does(reader):
    quote = "Der Quartalsgewinn stieg um neun Prozent auf 22,77 Milliarden Dollar."
    assert short_answer("Wie hat sich der Quartalsgewinn von 2024 bis 2025 verändert?", quote, reader) is None
    assert short_answer("Wie haben sich die Gewinne entwickelt?", quote, reader) is None
    assert short_answer("How did the quarterly profit change over time?", quote, reader) is None
    developer = "Das Telefon wurde von Philipp Reis entwickelt."
    assert short_answer("Wer hat das Telefon entwickelt?", developer, reader).text == "Philipp Reis"


def test_a_short_answer_says_more_than_the_question_unless_it_picks_one_of_its_alternatives(reader):
    quote = "Die Firma stellte ihre Pläne für 2026 vor, nachdem der Umsatz gestiegen war."
    question = "Wann stellte die Firma ihre Pläne für 2026 vor?"
    span = short_answer(question, quote, reader)  # the reader alone finds the year most likely
    assert span is None or set(span.text.lower().split()) - set(question.lower().rstrip("?").split())
    matrix = np.zeros((3, len(FEATURES)))
    matrix[0, FEATURES.index("all_overlap")] = 1  # the first candidate holds question words only
    assert spans._choosable("Wann stellte die Firma ihre Pläne vor?", matrix).tolist() == [False, True, True]
    assert spans._choosable("Stellte sie 2026 oder 2027 ihre Pläne vor?", matrix).all()


def test_yes_no_questions_get_no_short_answer_but_alternatives_do(reader):
    quote = "Der Umsatz stieg im vierten Quartal um 24 Prozent, im dritten um sieben Prozent."
    assert short_answer("Stieg der Umsatz im vierten Quartal stärker als im dritten?", quote, reader) is None
    assert short_answer("Did revenue grow faster in the fourth quarter?", quote, reader) is None
    span = short_answer("Stieg der Umsatz im vierten Quartal um 24 oder um sieben Prozent?", quote, reader)
    assert span is not None and span.text in quote


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=40), st.text(min_size=0, max_size=160))
def test_a_short_answer_is_always_verbatim(reader, question, quote):
    span = short_answer(question, quote, reader)
    if span is not None:
        assert quote[span.start:span.end] == span.text and span.text.strip() == span.text
        assert 0.0 <= span.score <= 1.0


def test_the_saved_model_is_readable_json_with_its_record(reader):
    data = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    assert data["features"] == list(FEATURES) and set(data["weights"]) == set(FEATURES)
    assert len(set(FEATURES)) == len(FEATURES), "every feature has a column of its own"
    record = json.loads((MODEL_PATH.parent / "span_params.json").read_text(encoding="utf-8"))
    assert record["scores"]["heldout_gold_sentence"]["questions"] > 500
    assert record["scores"]["tune_cv_gold_sentence"]["folds"] == 4
    quote = "Anna Bauer kam."
    found, matrix = span_features("Wer?", quote, reader.read("Wer?", quote, word_spans(quote)))
    scores = load_span_model().scores(matrix)
    assert len(found) == len(scores) and np.isclose(scores.sum(), 1.0)


def test_parts_of_speech_mark_noun_phrases_and_heads(reader):
    quote = "Die Truppen führte Generalmajor Louis-Joseph de Montcalm an."
    found, matrix = span_features("Wer führte die Truppen an?", quote,
                                  reader.read("Wer führte die Truppen an?", quote, word_spans(quote)))
    rows = {quote[c.start:c.end]: dict(zip(FEATURES, row)) for c, row in zip(found, matrix)}
    assert rows["Generalmajor Louis-Joseph de Montcalm"]["np_exact"] == 1
    assert rows["Truppen"]["np_core"] == 1 and rows["Louis-Joseph de Montcalm"]["np_tail"] == 1
    assert rows["Louis-Joseph de Montcalm"]["who_head_name"] == 1 and rows["Truppen"]["who_head_noun"] == 1
    assert rows["Truppen führte"]["has_verb"] == 1 and rows["Truppen führte"]["last_verb"] == 1
    assert "Montcalm" in short_answer("Wer führte die Truppen an?", quote, reader).text


def test_features_of_all_candidates_at_once_are_those_of_each():
    quote = "Der Umsatz stieg 2024 auf rund 14,3 Milliarden US-Dollar (plus 22 %), sagte Finanzchefin Susan Li."
    count = len(word_spans(quote))
    reading = Reading(np.linspace(-3.0, 3.0, count), np.linspace(2.0, -2.0, count))
    found, matrix = span_features("Wie hoch war der Umsatz?", quote, reading)
    assert found == candidates(quote)
    column = {name: k for k, name in enumerate(FEATURES)}
    for cand, row in zip(found, matrix):
        assert row[column["len_log"]] == math.log(cand.last - cand.first)
        assert row[column["chars_log"]] == math.log(cand.end - cand.start)
        assert row[column["reader_start"]] == reading.start[cand.first]
        assert row[column["reader_end_inside"]] == max(reading.end[cand.first:cand.last - 1], default=-10.0)
        assert row[column["reader_end_before"]] == (reading.end[cand.first - 1] if cand.first else -10.0)
    rows = {quote[c.start:c.end]: dict(zip(FEATURES, row)) for c, row in zip(found, matrix)}
    amount = rows["rund 14,3 Milliarden US-Dollar"]
    assert amount["type_amount"] == amount["maximal_number"] == amount["count_x_amount"] == 1
    assert rows["Susan Li"]["type_name"] == 1 and rows["Susan Li"]["maximal_name"] == 0
    assert rows["Finanzchefin Susan Li"]["maximal_name"] == 1
    assert rows["2024"]["type_year"] == 1 and rows["plus 22 %"]["in_parens"] == 1
    assert rows["Umsatz"]["overlap_frac"] == 1 and rows["stieg 2024"]["prev_is_q"] == 1
