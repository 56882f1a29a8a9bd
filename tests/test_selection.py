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
