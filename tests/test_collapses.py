"""Tests for metrics.count_collapses: training-accuracy collapses after the first fit."""

import math

import pytest

from modarith.core.metrics import count_collapses


def _history(values, every=100):
    return {"step": [every * i for i in range(len(values))], "train_acc": list(values)}


def test_two_dips_after_fitting_are_two_collapses():
    h = _history([0.1, 0.6, 1.0, 0.5, 0.5, 1.0, 0.95, 0.5, 1.0, 1.0])
    out = count_collapses(h)
    assert out["collapses"] == 2
    assert out["first_fit"] == 200
    # each episode: first step below, first step back at >= 0.9, lowest value
    assert out["episodes"] == [(300, 500, 0.5), (700, 800, 0.5)]
    assert out["window"] == 900 - 200
    assert out["rate_per_1k"] == pytest.approx(1000 * 2 / 700)


def test_never_fitted_has_no_collapses_and_no_rate():
    out = count_collapses(_history([0.1, 0.95, 0.2, 0.99, 0.3]))
    assert out["collapses"] == 0
    assert out["first_fit"] is None
    assert out["window"] == 0
    assert math.isnan(out["rate_per_1k"])


def test_drops_before_the_first_fit_do_not_count():
    out = count_collapses(_history([0.2, 0.95, 0.3, 1.0, 0.99, 0.92]))
    assert out["collapses"] == 0
    assert out["rate_per_1k"] == 0.0


def test_an_open_episode_at_the_end_counts_once_with_no_end():
    out = count_collapses(_history([1.0, 0.4, 0.02, 0.3]))
    assert out["collapses"] == 1
    assert out["episodes"] == [(100, None, 0.02)]


def test_nan_counts_as_below_and_thresholds_are_parameters():
    h = _history([1.0, float("nan"), 1.0, 0.85, 1.0])
    assert count_collapses(h)["collapses"] == 2
    assert count_collapses(h, below=0.8)["collapses"] == 1  # 0.85 is no longer a collapse
    assert math.isnan(count_collapses(h)["episodes"][0][2])  # lowest of an all-NaN episode


def test_t_max_cuts_the_history_and_other_keys_work():
    h = _history([1.0, 0.5, 1.0, 0.5, 1.0])
    assert count_collapses(h, t_max=250)["collapses"] == 1
    assert count_collapses(h, t_max=250)["last_step"] == 200
    h["val_acc"] = [0.0, 0.0, 0.99, 0.5, 0.99]
    assert count_collapses(h, key="val_acc", reached=0.99)["collapses"] == 1


def test_bad_input_names_the_problem():
    with pytest.raises(ValueError, match="'train_acc'"):
        count_collapses({"step": [0]})
    with pytest.raises(ValueError, match="below"):
        count_collapses(_history([1.0]), below=1.5)
    with pytest.raises(ValueError, match="reached"):
        count_collapses(_history([1.0]), reached=float("nan"))
    with pytest.raises(ValueError, match="t_max"):
        count_collapses(_history([1.0, 1.0]), t_max=-1)
    with pytest.raises(ValueError, match="equal length"):
        count_collapses({"step": [0, 1], "train_acc": [1.0]})
