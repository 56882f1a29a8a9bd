"""Training the answer selector: which questions each model learns from, and where the abstention threshold sits."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rag.eval.train_answerer import abstention_cut, german_items, never_certain
from rag.lang.de import looks_english


@given(st.lists(st.integers(-500, 500), min_size=2, max_size=60, unique=True), st.floats(0.0, 0.3))
def test_with_equal_weights_the_cut_leaves_at_most_the_allowed_share_below(logits, allowed):
    logits = np.array(logits) / 100.0  # logits closer than the cut's 1e-6 margin count as one
    cut = abstention_cut(logits, np.ones(len(logits)), allowed)
    assert (logits < cut).mean() <= allowed + 1e-9
    assert (logits < cut).sum() == min(int(np.floor(allowed * len(logits) + 1e-9)), len(logits) - 1)


def test_a_heavier_question_counts_for_its_weight():
    logits = np.array([-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert (logits < abstention_cut(logits, np.ones(10), 0.2)).sum() == 2
    weights = np.array([3.0, 1, 1, 1, 1, 1, 1, 1, 1, 1])  # the lowest one weighs 3 of 12
    assert (logits < abstention_cut(logits, weights, 0.2)).sum() == 0
    assert (logits < abstention_cut(logits, weights, 0.25)).sum() == 1


def test_each_model_learns_from_the_eval_set_questions_in_its_language():
    german, english = german_items(), german_items(english=True)
    assert german and english and not {i.id for i in german} & {i.id for i in english}
    assert not any(looks_english(i.question) for i in german) and all(looks_english(i.question) for i in english)
    assert {i.split for i in german} == {"tune", "heldout"}


@pytest.mark.parametrize("english", [False, True])
def test_the_eval_set_labels_a_gold_evidence_sentence_positive(english):
    item = next(i for i in german_items(english=english) if i.answerable)
    assert not item.positive("not-a-gold-article", "irgendein Satz")


def test_a_block_of_only_right_or_only_wrong_answers_is_never_certain():
    levels = np.array([0.0, 0.0, 0.4, 0.9, 1.0, 1.0])
    fitted = np.array([0.0] * 3 + [0.4] * 5 + [0.9] * 10 + [1.0] * 8)
    out = never_certain(levels, fitted, np.ones(len(fitted)))
    assert out.tolist() == [1 / 5, 1 / 5, 0.4, 0.9, 9 / 10, 9 / 10]
    assert np.all(np.diff(out) >= 0)
    assert never_certain(np.array([0.2, 0.8]), np.array([0.2, 0.8]), np.ones(2)).tolist() == [0.2, 0.8]
    # a tiny top block does not fall under the level below it
    assert never_certain(np.array([0.5, 0.95, 1.0]), np.array([0.5, 0.95, 1.0]), np.ones(3)).tolist() == [0.5, 0.95, 0.95]


def test_confidence_learns_whether_the_answer_with_the_candidates_it_joins_holds_the_gold():
    """The answer quotes the best candidate and joins or adds the next best ones nearly as likely (``answering``):
    confidence is calibrated on that, not on the best candidate alone."""
    from rag.answer import features as F
    from rag.eval.train_answerer import Collected, _per_question

    def judged(logits, labels):
        n = len(logits)
        s = Collected("t", np.zeros((n, len(F.FEATURES))), np.array(labels), np.zeros(n, int),
                      np.zeros((1, len(F.QUESTION_FEATURES))), np.array([True]), np.array([True]))
        _, hit, answer, ceiling = _per_question(np.array(logits, float), np.zeros(n), s, extra_ratio=0.6)
        return hit[0], answer[0], ceiling[0]

    assert judged([2.0, 1.9, 1.8, -3.0], [0, 0, 1, 0]) == (0, 1, 1)  # a third candidate nearly as likely holds it
    assert judged([2.0, 1.9, -2.0, -3.0], [0, 0, 1, 0]) == (0, 0, 1)  # an unlikely one is not quoted
    assert judged([2.0, -1.0], [1, 0]) == (1, 1, 1)


def test_the_record_names_the_dictionary_and_its_absence_is_said(tmp_path):
    from rag.eval.train_answerer import _dictionary_used
    from rag.settings import Settings

    said = []
    missing = Settings(english_dictionary=tmp_path / "missing", dictionary_cache_dir=tmp_path / "cache")
    assert _dictionary_used(missing, said.append) is None
    assert len(said) == 1 and "trans-de-en" in said[0] and said[0].startswith("No English-German dictionary at ")
    source = tmp_path / "de-en"
    source.write_text("Erlös {m} :: revenue\nGewinn {m} :: profit\n", encoding="utf-8")
    found = Settings(english_dictionary=source, dictionary_cache_dir=tmp_path / "cache")
    assert _dictionary_used(found, said.append) == "de-en (Ding, Debian package trans-de-en; 2 English words)"
    assert len(said) == 1


def test_a_feature_not_measured_stands_at_its_mean_and_one_never_measured_adds_nothing():
    from rag.eval.train_answerer import _fit

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] > 0).astype(int)
    X[::4, 1] = np.nan  # not measured for some rows
    X[:, 2] = np.nan  # never measured
    model = _fit(X, y, np.ones(len(y)), 1.0, ("a", "b", "c"))
    assert np.isfinite(model.mean).all() and np.isfinite(model.coef).all()
    assert model.coef[2] == 0.0 and model.coef[0] > 1.0
    assert np.isfinite(model.logits(X)).all()


def test_the_record_names_the_thesaurus_and_its_absence_is_said(tmp_path):
    from rag.eval.train_answerer import _thesaurus_used
    from rag.settings import Settings

    said = []
    cache = tmp_path / "cache"
    assert _thesaurus_used(Settings(german_thesaurus=tmp_path / "missing.dat", dictionary_cache_dir=cache),
                           said.append) is None
    assert len(said) == 1 and "mythes-de" in said[0] and said[0].startswith("No German thesaurus at ")
    source = tmp_path / "th.dat"
    source.write_text("UTF-8\nchef|1\n-|Chef|Leiter\n", encoding="utf-8")
    assert _thesaurus_used(Settings(german_thesaurus=source, dictionary_cache_dir=cache), said.append) == \
        "th.dat (OpenThesaurus, Debian package mythes-de; 1 synonym sets)"
