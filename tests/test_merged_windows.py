"""Merged windows give every window's p_up as the plain reference (core.model.window_p_up) does:
each window from a zero state at its own start, whatever the order of the ends, the model's
memory, or the number of worker threads; and they do so with much less GRU work."""

import numpy as np
import pytest
import torch
from conftest import make_candles

from fc.core.data.features import price_change
from fc.core.learning.merged_windows import MIN_LEADERS, merged_window_p_up, model_p_up
from fc.core.learning.model import Ensemble, Forecast, Scaling, window_p_up

SCALING = Scaling(1.0, 0.003)


@pytest.fixture(scope="module")
def features():
    return price_change(make_candles(2600, "30min", seed=4)["close"].to_numpy())


def model(hidden=16, layers=3, seed=0) -> Forecast:
    torch.manual_seed(seed)
    return Forecast(hidden, layers).eval()


@pytest.mark.parametrize("hidden, layers, seq_len", [(16, 3, 256), (8, 2, 200), (4, 1, 96)])
def test_every_window_equals_the_reference_with_less_work(features, hidden, layers, seq_len):
    net = model(hidden, layers)
    ends = np.arange(seq_len - 1, len(features))
    stats = {}
    got = merged_window_p_up(net, features, ends, seq_len, SCALING, batch=512, stats=stats)
    reference = window_p_up(net, features, ends, seq_len, SCALING)
    assert np.abs(got - reference).max() <= 1e-6
    # a random GRU forgets within ~150 steps: most of each window is read, not computed
    assert stats["layer_steps"] < 0.6 * stats["whole_window_layer_steps"]


def test_any_order_duplicates_gaps_and_edges(features):
    net, seq_len = model(), 128
    rng = np.random.default_rng(1)
    ends = rng.choice(np.arange(seq_len - 1, len(features)), size=700)  # unsorted, repeats
    ends = np.r_[ends, seq_len - 1, len(features) - 1]
    got = merged_window_p_up(net, features, ends, seq_len, SCALING, batch=256)
    assert np.abs(got - window_p_up(net, features, ends, seq_len, SCALING)).max() <= 1e-6
    few = ends[: MIN_LEADERS - 5]  # fewer windows than leaders
    got = merged_window_p_up(net, features, few, seq_len, SCALING)
    assert np.abs(got - window_p_up(net, features, few, seq_len, SCALING)).max() <= 1e-6
    assert len(merged_window_p_up(net, features, ends[:0], seq_len, SCALING)) == 0
    with pytest.raises(ValueError, match="outside"):
        merged_window_p_up(net, features, np.array([seq_len - 2]), seq_len, SCALING)


def test_a_model_that_never_forgets_is_computed_whole(features):
    """An update gate stuck near 1 keeps the initial state: no window meets its leader, every
    window runs to its end, and the answer is still the reference's."""
    net, seq_len = model(8, 2), 160
    with torch.no_grad():
        for layer in range(2):
            getattr(net.gru, f"bias_hh_l{layer}")[8:16] = 6.0  # z = sigmoid(>= ~5): remember
    ends = np.arange(seq_len - 1, 1400)
    stats = {}
    got = merged_window_p_up(net, features, ends, seq_len, SCALING, stats=stats)
    assert np.abs(got - window_p_up(net, features, ends, seq_len, SCALING)).max() <= 1e-6
    assert stats["layer_steps"] >= stats["whole_window_layer_steps"]


def test_worker_threads_change_nothing(features):
    net, seq_len = model(8, 2), 192
    ends = np.arange(seq_len - 1, 1500)
    one = merged_window_p_up(net, features, ends, seq_len, SCALING, batch=300)
    done = []
    two = merged_window_p_up(net, features, ends, seq_len, SCALING, batch=300, workers=2,
                             progress=done.append)  # fmt: skip
    np.testing.assert_array_equal(one, two)
    assert done == sorted(done) and done[-1] == len(ends)


@pytest.mark.parametrize("seeds, temperature", [(2, 1.0), (1, 1.7), (3, 0.8)])
def test_an_ensemble_or_a_tempered_model_equals_its_reference(features, seeds, temperature):
    members = [model(8, 2, seed=k) for k in range(seeds)]
    ensemble = Ensemble(members, temperature).eval()
    seq_len, ends = 128, np.arange(127, 1200)
    done = []
    got = model_p_up(ensemble, features, ends, seq_len, SCALING, lambda d, t: done.append((d, t)))
    assert np.abs(got - window_p_up(ensemble, features, ends, seq_len, SCALING)).max() <= 1e-6
    assert done[-1] == (seeds * len(ends), seeds * len(ends))
