"""Temperature scaling and the calibration figures (bot/nlu/calibration.py)."""

from __future__ import annotations

import numpy as np
import pytest

from bot.nlu.calibration import (
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    overconfident_error_rate,
    softmax,
)


def test_softmax_is_stable_for_large_logits_and_sums_to_one() -> None:
    probs = softmax(np.array([[1000.0, 999.0, -1000.0], [0.0, 0.0, 0.0]]))
    assert np.allclose(probs.sum(axis=1), 1.0)
    assert np.isfinite(probs).all()
    assert probs[1] == pytest.approx([1 / 3] * 3)


def test_a_temperature_above_one_softens_and_below_one_sharpens() -> None:
    logits = np.array([[2.0, 0.0, -1.0]])
    top = softmax(logits)[0, 0]
    assert apply_temperature(logits, 3.0)[0, 0] < top < apply_temperature(logits, 0.5)[0, 0]
    # The ranking never changes: a temperature calibrates, it does not re-decide.
    assert apply_temperature(logits, 7.0).argmax() == 0


def _overconfident_logits(n: int, scale: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits of a model that is right 70 % of the time but says so with ~100 %."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    predicted = np.where(rng.random(n) < 0.7, labels, (labels + 1) % 4)
    logits = rng.normal(0, 0.1, (n, 4))
    logits[np.arange(n), predicted] += scale
    return logits, labels


def test_fitting_recovers_a_temperature_that_makes_confidence_match_accuracy() -> None:
    logits, labels = _overconfident_logits(2000, scale=12.0)
    raw = softmax(logits)
    correct = raw.argmax(axis=1) == labels
    before = expected_calibration_error(raw.max(axis=1), correct)
    temperature = fit_temperature(logits, labels)
    tempered = apply_temperature(logits, temperature)
    after = expected_calibration_error(tempered.max(axis=1), correct)
    assert temperature > 2  # overconfident logits need softening
    assert before > 0.25 and after < 0.05
    assert tempered.max(axis=1).mean() == pytest.approx(correct.mean(), abs=0.05)


def test_the_fit_is_deterministic_and_handles_no_data() -> None:
    logits, labels = _overconfident_logits(300, scale=5.0, seed=3)
    assert fit_temperature(logits, labels) == fit_temperature(logits.copy(), list(labels))
    assert fit_temperature(np.zeros((0, 4)), []) == 1.0


def test_ece_is_zero_when_confidence_equals_accuracy_and_weights_bins_by_size() -> None:
    assert expected_calibration_error([0.75] * 4, [True, True, True, False]) == pytest.approx(0)
    # One bin at 1.0 that is always wrong, one at 0.5 that is half right: 0.5 * 1 + 0.5 * 0.
    assert expected_calibration_error([1.0, 1.0, 0.5, 0.5], [False, False, True, False]) == \
        pytest.approx(0.5)
    assert expected_calibration_error([], []) == 0.0
    assert expected_calibration_error([0.0], [False]) == 0.0


def test_overconfident_errors_count_only_wrong_and_confident_predictions() -> None:
    confidences = [0.95, 0.95, 0.9, 0.89, 0.2]
    correct = [True, False, False, False, False]
    assert overconfident_error_rate(confidences, correct) == pytest.approx(2 / 5)
    assert overconfident_error_rate(confidences, correct, threshold=0.99) == 0.0
    assert overconfident_error_rate([], []) == 0.0
