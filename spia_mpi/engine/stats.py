"""Statistics of configuration blocks: the delete-one jackknife used for every error bar."""
from __future__ import annotations

import numpy as np


def jackknife_error(replicas, axis: int = 0) -> np.ndarray:
    """Delete-one jackknife standard error σ = √((n−1)/n Σ_i (x_i − x̄)²) over ``axis``.

    ``replicas`` holds the n estimates with block i deleted (any shape; NaN propagates).
    """
    x = np.asarray(replicas, dtype=float)
    n = x.shape[axis]
    return np.sqrt((n - 1) / n * np.sum((x - x.mean(axis=axis, keepdims=True)) ** 2, axis=axis))
