"""The reader: e5 reads a question and a quote together, and its trained heads point at the answer's words."""

import json

import numpy as np

from rag.answer.reader import READER_PATH, Reader, load_heads, pieces
from rag.answer.spans import word_spans
from rag.retrieve.onnx_e5 import READER_LAYERS

QUOTE = "Finanzchefin Susan Li sagte am Mittwoch in Menlo Park, die Ausgaben würden weiter steigen."


def test_pieces_keep_every_character_before_their_word():
    spans = word_spans(QUOTE)
    texts, words = pieces(QUOTE, spans)
    assert "".join(texts) == QUOTE[:spans[-1][1]] and all(t.endswith(w) for t, w in zip(texts, words))


def test_the_saved_heads_are_readable_json_over_the_reader_layers():
    data = json.loads(READER_PATH.read_text(encoding="utf-8"))
    assert data["layers"] == list(READER_LAYERS) and len(data["start"]["weights"]) == 384 * len(READER_LAYERS)
    heads = load_heads()
    assert np.isfinite(heads.start).all() and np.isfinite(heads.end).all()


def test_the_question_changes_what_the_reader_sees(reader):
    spans = word_spans(QUOTE)
    first, last = reader.states("Wer ist Finanzchefin?", QUOTE, spans)
    assert first.shape == last.shape == (len(spans), 384 * len(READER_LAYERS))
    other, _ = reader.states("Wo wurde gesprochen?", QUOTE, spans)
    assert not np.allclose(first, other)


def test_the_heads_point_at_answer_words_and_follow_the_question(reader):
    spans = word_spans(QUOTE)
    words = [QUOTE[a:b] for a, b in spans]
    who = reader.read("Wer ist die Finanzchefin?", QUOTE, spans)
    where = reader.read("Wo sagte sie das?", QUOTE, spans)
    # the likeliest starts are the quote's name, place and day, not its function words or verbs
    assert {words[k] for k in np.argsort(-who.start)[:3]} == {"Susan", "Menlo", "Mittwoch"}
    assert words[int(np.argmax(who.end))] == "Li"
    # and the question decides between them
    susan, menlo = words.index("Susan"), words.index("Menlo")
    assert who.start[susan] > who.start[menlo] and where.start[menlo] > where.start[susan]


def test_an_empty_quote_reads_as_nothing(reader):
    reading = Reader(reader.encoder).read("Wer?", "", [])
    assert len(reading.start) == len(reading.end) == 0
