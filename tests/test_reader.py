"""The reader: e5, fine-tuned to find answers, reads a question and a quote together and points at the answer's
words."""

import numpy as np
import pytest

from rag.answer.reader import ADAPTER_PATH, Reader, pieces
from rag.answer.spans import word_spans
from rag.retrieve.onnx_e5 import READER_FROM, _beside

QUOTE = "Finanzchefin Susan Li sagte am Mittwoch in Menlo Park, die Ausgaben würden weiter steigen."


def test_pieces_keep_every_character_before_their_word():
    spans = word_spans(QUOTE)
    texts, words = pieces(QUOTE, spans)
    assert "".join(texts) == QUOTE[:spans[-1][1]] and all(t.endswith(w) for t, w in zip(texts, words))


def test_the_saved_weights_are_plain_arrays_for_every_layer_above_the_frozen_ones():
    with np.load(ADAPTER_PATH, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    for layer in range(READER_FROM + 1, 12):
        for linear in ("q", "k", "v", "ao", "fi", "fo"):
            up, down = arrays[f"l{layer}.{linear}.up"], arrays[f"l{layer}.{linear}.down"]
            assert up.shape[1] == down.shape[0] < 64 and np.abs(up).max() > 0
    assert arrays["head.w"].shape == (2, 384) and all(np.isfinite(a.astype(np.float64)).all() for a in arrays.values())


def test_the_reader_points_at_answer_words_and_follows_the_question(reader):
    spans = word_spans(QUOTE)
    words = [QUOTE[a:b] for a, b in spans]

    def best(question):
        reading = reader.read(question, QUOTE, spans)
        assert len(reading.start) == len(reading.end) == len(spans)
        return words[int(np.argmax(reading.start))], words[int(np.argmax(reading.end))]

    assert best("Wer ist die Finanzchefin?") == ("Susan", "Li")
    assert best("Wann sagte sie das?") == ("Mittwoch", "Mittwoch")
    start, end = best("Wo sagte sie das?")
    assert start in {"Menlo", "Park"} and end == "Park"


def test_an_empty_quote_reads_as_nothing(reader):
    reading = Reader(reader.encoder).read("Wer?", "", [])
    assert len(reading.start) == len(reading.end) == 0


def test_work_done_beside_the_reading_changes_nothing_and_returns_its_result(reader):
    spans = word_spans(QUOTE)
    alone = reader.read("Wer ist die Finanzchefin?", QUOTE, spans)
    beside, tagged = reader.read_beside("Wer ist die Finanzchefin?", QUOTE, spans, lambda: "tagged")
    assert tagged == "tagged"
    assert np.array_equal(alone.start, beside.start) and np.array_equal(alone.end, beside.end)
    empty, seven = reader.read_beside("Wer?", "", [], lambda: 7)
    assert seven == 7 and len(empty.start) == len(empty.end) == 0


def test_an_error_in_the_reading_thread_reaches_the_caller_after_the_work_beside_it():
    done = []

    def fails():
        raise ValueError("the run failed")

    with pytest.raises(ValueError, match="the run failed"):
        _beside(fails, lambda: done.append("work"))
    assert done == ["work"]
    assert _beside(lambda: np.ones(2), lambda: "work")[1] == "work"
