"""`--top N`'s pieces: the trailing 30-day quote volume against pandas' rolling sums with random
listings, delistings and gaps; the top-N mask's properties; and a leak test poisoning the
candles after T (a symbol listed after T, one delisted after T)."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fc.core.evaluation.universe_choice import top_mask, trailing_quote_volume


def ragged_universe(seed: int, bars: int = 900, symbols: int = 5, freq: str = "1h"):
    """(close, volume, times): random walks, each symbol listed at a random bar and some
    delisted before the end (NaN outside), random single-candle gaps (NaN), filled-like bars
    (volume 0), and a few times missing from the index itself (irregular steps)."""
    rng = np.random.default_rng(seed)
    times = pd.date_range("2024-09-01", periods=bars + 40, freq=freq, tz="UTC")
    times = times.delete(np.sort(rng.choice(bars + 40, 40, replace=False)))
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (bars, symbols)), axis=0))
    volume = rng.lognormal(3, 1.5, (bars, symbols))
    for s in range(symbols):
        listed = rng.integers(0, bars // 2)
        close[:listed, s] = np.nan
        volume[:listed, s] = np.nan
        if rng.random() < 0.5:
            close[rng.integers(listed, bars) :, s] = np.nan
    gaps = rng.random((bars, symbols)) < 0.05
    close[gaps] = np.nan
    volume[rng.random((bars, symbols)) < 0.05] = 0.0
    return close, volume, times


def pandas_rolling(close, volume, times, days):
    frame = pd.DataFrame(np.nan_to_num(close * volume), index=times)
    return frame.rolling(f"{days}D").sum().to_numpy()


@pytest.mark.parametrize(("seed", "days", "freq"), [(0, 30, "1h"), (1, 2, "1h"), (2, 1, "30min")])
def test_trailing_quote_volume_equals_pandas_rolling(seed, days, freq):
    close, volume, times = ragged_universe(seed, freq=freq)
    q = trailing_quote_volume(close, volume, times, days=days)
    want = pandas_rolling(close, volume, times, days)
    np.testing.assert_allclose(q, want, rtol=1e-12, atol=1e-9 * np.nanmax(want))
    # a window with no real candle of the symbol is exactly 0 (pandas may leave rounding there)
    ns = times.as_unit("ns").asi8
    real = np.isfinite(close * volume) & (volume > 0)
    for t in range(0, len(times), 37):
        window = (ns > ns[t] - pd.Timedelta(days=days).value) & (ns <= ns[t])
        empty = ~real[window].any(axis=0)
        assert np.all(q[t, empty] == 0.0)
        brute = np.nansum((close * volume)[window], axis=0)
        np.testing.assert_allclose(q[t], brute, rtol=1e-12)


def test_trailing_quote_volume_default_is_30_days_and_one_symbol_works():
    close, volume, times = ragged_universe(3, bars=1000, symbols=1)
    q = trailing_quote_volume(close[:, 0], volume[:, 0], times)
    np.testing.assert_allclose(q, pandas_rolling(close, volume, times, 30), rtol=1e-12,
                               atol=1e-6)  # fmt: skip


@settings(max_examples=80, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 12), st.integers(1, 8)),
    n=st.integers(1, 9),
    data=st.data(),
)
def test_top_mask_keeps_the_n_largest_eligible_volumes(shape, n, data):
    # few distinct volumes: ties are common, and NaN ranks as 0
    volume = data.draw(arrays(np.float64, shape, elements=st.sampled_from([0.0, 1.0, 2.5, 7.0,
                                                                           np.nan])))  # fmt: skip
    eligible = data.draw(arrays(np.bool_, shape))
    chosen = top_mask(volume, eligible, n)
    v = np.nan_to_num(volume)
    for t in range(shape[0]):
        assert chosen[t].sum() == min(n, eligible[t].sum())
        assert not (chosen[t] & ~eligible[t]).any()
        left = eligible[t] & ~chosen[t]
        if chosen[t].any() and left.any():
            assert v[t, chosen[t]].min() >= v[t, left].max()
            # at the boundary's volume, the symbols listed first win
            edge = v[t, chosen[t]].min()
            kept = np.flatnonzero(chosen[t] & (v[t] == edge))
            dropped = np.flatnonzero(left & (v[t] == edge))
            assert dropped.size == 0 or kept.max() < dropped.min()


def test_top_mask_refuses_no_symbol():
    with pytest.raises(ValueError, match="n >= 1"):
        top_mask(np.ones((2, 3)), np.ones((2, 3), bool), 0)


def test_top_n_at_or_before_t_ignores_every_candle_after_t():
    """Poison everything after T: prices and volumes of every symbol, a symbol listed only
    after T (with huge volume), one delisted after T. Volumes and the top-N choice at and
    before T do not move; the eligibility given is causal too (a real candle at t)."""
    close, volume, times = ragged_universe(7, bars=1200, symbols=6)
    close[:, 5] = volume[:, 5] = np.nan  # listed after T below
    T = 700

    def choice(c, v):
        q = trailing_quote_volume(c, v, times)
        return q, top_mask(q, np.isfinite(c), 3)

    q, chosen = choice(close, volume)
    rng = np.random.default_rng(8)
    c2, v2 = close.copy(), volume.copy()
    c2[T + 1 :] = rng.lognormal(5, 2, c2[T + 1 :].shape)
    v2[T + 1 :] = rng.lognormal(12, 3, v2[T + 1 :].shape)  # far larger than any before T
    c2[T + 1 :, 0] = v2[T + 1 :, 0] = np.nan  # symbol 0 delisted right after T
    q2, chosen2 = choice(c2, v2)
    assert np.array_equal(q[: T + 1], q2[: T + 1])
    assert np.array_equal(chosen[: T + 1], chosen2[: T + 1])
    assert not chosen2[: T + 1, 5].any() and chosen2[T + 1 :, 5].any()  # the poison bites after T
    assert not np.array_equal(chosen[T + 1 :], chosen2[T + 1 :])
