"""What every embedding backend shares: lazy loading and L2 normalisation.

Kept apart from ``rag.retrieve.embedding`` (which chooses a backend) so that a backend module such as
``rag.retrieve.onnx_e5`` can use it without importing the module that imports it.
"""

from __future__ import annotations

import numpy as np


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation as contiguous float32 (zero rows stay zero)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class LazyModel:
    """Loads the model on first use: ``warm_up()`` calls ``_load()`` once."""

    _model = None

    def _load(self):
        raise NotImplementedError

    def warm_up(self) -> None:
        if self._model is None:
            self._model = self._load()

    @property
    def model(self):
        self.warm_up()
        return self._model
