"""Fine-tuning the reader: PyTorch training moves the network towards the answers, and the ONNX graph built from
the saved weights computes what the trained network computes."""

import numpy as np
import pytest

from rag.answer.reader import Reader
from rag.answer.spans import word_spans
from rag.eval.reader_training import (article_folds, boundaries, fit_reader, read_states, readings,
                                      readings_out_of_fold, save_adapter)
from rag.eval.span_training import gold_examples


@pytest.fixture(scope="module")
def few(reader):
    examples = [e for e in gold_examples("tune") if e.article < 2]
    return examples, read_states(reader.encoder, examples)


def _hits(examples, read):
    """Share of questions whose likeliest start word is where an answer starts."""
    return np.mean([boundaries(e)[0][int(np.argmax(r.start))] == 1 for e, r in zip(examples, read)])


def test_boundaries_mark_where_an_answer_starts_and_ends():
    example = gold_examples("tune")[0]
    starts, ends = boundaries(example)
    assert starts.sum() >= 1 and ends.sum() >= 1 and len(starts) == len(ends) == len(word_spans(example.quote))
    assert np.argmax(starts) <= np.argmax(ends)


def test_folds_keep_an_article_together():
    examples = [e for e in gold_examples("tune") if e.article < 6]
    folds = article_folds(examples, 3)
    assert sorted(a for fold in folds for a in fold) == list(range(6))


def test_training_finds_the_answers_it_was_shown(few):
    examples, states = few
    untrained = fit_reader(states, examples, epochs=0)
    trained = fit_reader(states, examples, epochs=8)
    assert _hits(examples, readings(trained, states)) > _hits(examples, readings(untrained, states)) + 0.3


def test_the_onnx_graph_of_the_saved_weights_reads_as_the_network(few, reader, tmp_path):
    examples, states = few
    network = fit_reader(states, examples, epochs=1)
    save_adapter(network, tmp_path / "reader.npz")
    graph = Reader(reader.encoder, tmp_path / "reader.npz")
    for example, expected in zip(examples[:10], readings(network, states[:10])):
        got = graph.read(example.question, example.quote, word_spans(example.quote))
        assert np.corrcoef(got.start, expected.start)[0, 1] > 0.98
        assert np.corrcoef(got.end, expected.end)[0, 1] > 0.98
    runner = reader.encoder.model
    (runner.folder / f"{runner.readers[graph.adapter]}.onnx").unlink()  # a test's graph stays out of the cache


def test_out_of_fold_readings_cover_every_question(few):
    examples, states = few
    read = readings_out_of_fold(examples, states, folds=2, epochs=1)
    assert [len(r.start) for r in read] == [len(word_spans(e.quote)) for e in examples]
