"""The learned selector's model file: readable JSON that loads without pickle and fits the code's features."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rag.answer import selection as S


def test_the_committed_model_is_readable_json_that_fits_the_features():
    data = json.loads(S.MODEL_PATH.read_text(encoding="utf-8"))
    model = S.SelectorModel.from_dict(data)
    assert model.selector.features == S.FEATURES and model.answerable.features == S.QUESTION_FEATURES
    assert 0.0 < model.threshold < 1.0
    assert np.all(np.diff(model.calibration_y) >= 0) and 0.0 <= model.calibration_y.min() <= model.calibration_y.max() <= 1.0
    record = json.loads(S.MODEL_PATH.with_name("selector.params.json").read_text(encoding="utf-8"))
    assert record["features"] == list(S.FEATURES) and "training_data" in record and "scores" in record


def test_a_model_for_other_features_is_refused():
    data = json.loads(S.MODEL_PATH.read_text(encoding="utf-8"))
    data["selector"]["features"] = data["selector"]["features"][:-1]
    with pytest.raises(ValueError, match="retrain"):
        S.SelectorModel.from_dict(data)


def test_an_english_question_is_scored_by_the_model_trained_on_english_questions():
    from rag.answer.features import question_view

    model = S.default_model()
    assert model.english is not None and model.english.english is None
    assert model.english.threshold != model.threshold  # fitted on its own questions, not a copy
    weights = {"umsatz": 2.0, "nordlicht": 3.0}
    assert model.for_question(question_view("What was Nordlicht's revenue in 2021?", weights, 5.0)) is model.english
    assert model.for_question(question_view("Wie hoch war der Umsatz von Nordlicht 2021?", weights, 5.0)) is model
    again = S.SelectorModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert again.english.to_dict() == model.english.to_dict() and again.to_dict() == model.to_dict()
    german_only = S.SelectorModel.from_dict({k: v for k, v in model.to_dict().items() if k != "english"})
    assert german_only.for_question(question_view("What was Nordlicht's revenue?", weights, 5.0)) is german_only
