"""Confidence calibration: temperature scaling and the figures that measure it.

numpy only, so that the Rasa component (Python 3.10) and ``shopchat eval nlu``
(Python 3.11) share one implementation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "apply_temperature",
    "expected_calibration_error",
    "fit_temperature",
    "overconfident_error_rate",
    "softmax",
]

Array = np.ndarray[Any, np.dtype[np.float64]]
Labels = np.ndarray[Any, np.dtype[np.int64]]


def softmax(logits: Array) -> Array:
    """Row-wise softmax, stable for large logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    result: Array = exp / exp.sum(axis=1, keepdims=True)
    return result


def apply_temperature(logits: Array, temperature: float) -> Array:
    """Probabilities from logits divided by ``temperature`` (>1 softens, <1 sharpens)."""
    return softmax(np.asarray(logits, dtype=np.float64) / temperature)


def _nll(logits: Array, labels: Labels, temperature: float) -> float:
    probs = apply_temperature(logits, temperature)
    picked = probs[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.clip(picked, 1e-12, 1.0))))


def fit_temperature(logits: Array, labels: Sequence[int] | Labels,
                    low: float = 0.05, high: float = 20.0, steps: int = 60) -> float:
    """The temperature that minimises the negative log-likelihood of ``labels``.

    ``logits`` must come from predictions on data the model did not train on
    (out-of-fold), or the fit learns the training set's overconfidence. A
    golden-section search over log T: the NLL is convex in 1/T, and a fixed
    number of steps keeps the result identical from run to run.
    """
    y = np.asarray(labels, dtype=np.int64)
    if len(y) == 0:
        return 1.0
    lo, hi = np.log(low), np.log(high)
    ratio = (np.sqrt(5.0) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = _nll(logits, y, float(np.exp(a))), _nll(logits, y, float(np.exp(b)))
    for _ in range(steps):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = _nll(logits, y, float(np.exp(a)))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = _nll(logits, y, float(np.exp(b)))
    return round(float(np.exp((lo + hi) / 2)), 6)


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool],
                               bins: int = 10) -> float:
    """ECE: the gap between confidence and accuracy, averaged over equal-width bins
    weighted by how many predictions fall in each (0 is perfectly calibrated)."""
    conf = np.asarray(confidences, dtype=np.float64)
    hit = np.asarray(correct, dtype=np.float64)
    if len(conf) == 0:
        return 0.0
    # Bin i holds (i/bins, (i+1)/bins]; a confidence of exactly 0 goes to the first.
    index = np.clip(np.ceil(conf * bins).astype(np.int64) - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            total += mask.sum() / len(conf) * abs(hit[mask].mean() - conf[mask].mean())
    return float(total)


def overconfident_error_rate(confidences: Sequence[float], correct: Sequence[bool],
                             threshold: float = 0.9) -> float:
    """Share of *all* predictions that are wrong yet at least ``threshold`` confident:
    the mistakes no confidence threshold can catch."""
    conf = np.asarray(confidences, dtype=np.float64)
    hit = np.asarray(correct, dtype=bool)
    if len(conf) == 0:
        return 0.0
    return float(np.mean((conf >= threshold) & ~hit))
