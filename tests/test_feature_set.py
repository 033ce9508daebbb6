"""The feature registry and spec: each feature against an independent computation, `close`
against today's price_change and fit_scaling bit for bit, parsing and its refusals, the spec's
hash and saved form, symbol alignment and the combined filled mask."""

import hashlib
import json
import math
import re

import numpy as np
import pandas as pd
import pytest
from conftest import make_candles

from fc.core.data.candles import to_grid
from fc.core.data.feature_set import (
    FEATURES,
    FeatureSpec,
    align_symbols,
    build_columns,
    feature_decision_mask,
    fit_normalisation,
    normalise,
    parse_features,
)
from fc.core.data.features import decision_mask, price_change
from fc.core.errors import FcError
from fc.core.learning.model import Scaling
from fc.core.learning.schemes import make_series
from fc.core.learning.training import fit_scaling

BTC = "BTC/USDT"


def seeded_grid(n: int = 400, seed: int = 0, drop=(50, 51, 52, 200)) -> pd.DataFrame:
    """A 5m grid with filled bars (the dropped rows) and zero volumes on them."""
    candles = make_candles(n, seed=seed)
    return to_grid(candles.drop(candles.index[list(drop)]), "5m")


def one_symbol(text: str, grid: pd.DataFrame) -> np.ndarray:
    return build_columns(parse_features(text, BTC), {BTC: grid}, "5m")


def test_close_is_todays_price_change_bit_for_bit():
    grid = seeded_grid()
    assert np.array_equal(one_symbol("close", grid)[:, 0], price_change(grid["close"].to_numpy()))


def test_candle_features_against_plain_loops():
    grid = seeded_grid()
    got = one_symbol("ret,range,body,wicks", grid)
    o, h, lo, c = (grid[k].tolist() for k in ("open", "high", "low", "close"))
    for t in range(len(grid)):
        span = h[t] - lo[t]
        upper = (h[t] - max(o[t], c[t])) / span if span > 0 else 0.0
        lower = (min(o[t], c[t]) - lo[t]) / span if span > 0 else 0.0
        ret = math.log(c[t] / c[t - 1]) if t else 0.0
        want = [ret, math.log(h[t] / lo[t]), math.log(c[t] / o[t]), upper, lower]
        np.testing.assert_allclose(got[t], want, rtol=1e-14, atol=1e-16)
    assert grid["filled"].iloc[50] and np.array_equal(got[50], [0, 0, 0, 0, 0])


@pytest.mark.parametrize("n", [5, 48])
def test_rolling_features_against_pandas(n):
    grid = seeded_grid()
    got = one_symbol(f"volume:{n},volatility:{n}", grid)
    logv = np.log1p(grid["volume"])
    volume = (logv - logv.rolling(n).mean()).fillna(0.0)
    ret = np.log(grid["close"]).diff().fillna(0.0)
    volatility = (ret**2).rolling(n).mean() ** 0.5
    volatility.iloc[:n] = 0.0  # the window must not hold the first (placeholder) ret
    np.testing.assert_allclose(got[:, 0], volume, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got[:, 1], volatility, rtol=0, atol=1e-12)
    assert got[n - 1, 0] != 0 and np.all(got[: n - 1, 0] == 0)


def test_time_is_of_the_decision_candles_close():
    grid = to_grid(make_candles(300, timeframe="30min", start="2024-03-03 20:00"), "30m")
    got = build_columns(parse_features("time", BTC), {BTC: grid}, "30m")
    close = grid.index + pd.Timedelta(30, "min")
    hour = 2 * np.pi * (close.hour + close.minute / 60) / 24
    week = 2 * np.pi * close.day_of_week / 7
    want = np.column_stack([np.sin(hour), np.cos(hour), np.sin(week), np.cos(week)])
    np.testing.assert_allclose(got, want, atol=1e-12)
    # 2024-03-03 20:00 is a Sunday; its candle closes 20:30 (hour 20.5, weekday 6)
    assert got[0, 0] == pytest.approx(math.sin(2 * math.pi * 20.5 / 24))
    assert got[0, 2] == pytest.approx(math.sin(2 * math.pi * 6 / 7))


def test_every_feature_is_finite_on_filled_bars_and_zero_volume():
    grid = seeded_grid()
    grid.loc[grid.index[10:20], "volume"] = 0.0
    spec = parse_features(",".join(FEATURES), BTC)
    columns = build_columns(spec, {BTC: grid}, "5m")
    assert columns.shape == (len(grid), len(spec.columns)) and columns.dtype == np.float64
    assert np.isfinite(columns).all()


def test_spec_columns_symbols_warmup_and_text():
    spec = parse_features(" close, ret,volume,wicks@ETH/USDT , ret@XRP/USDT:USDT,ret@ETH/USDT", BTC)
    assert spec.columns == (
        "close", "ret", "volume:48", "wicks.upper@ETH/USDT", "wicks.lower@ETH/USDT",
        "ret@XRP/USDT:USDT", "ret@ETH/USDT",
    )  # fmt: skip
    assert spec.symbols == (BTC, "ETH/USDT", "XRP/USDT:USDT")
    assert spec.warmup == 47  # volume:48's first full window ends at index 47
    assert spec.text == "close,ret,volume:48,wicks@ETH/USDT,ret@XRP/USDT:USDT,ret@ETH/USDT"
    assert parse_features(spec.text, BTC) == spec
    assert parse_features("ret@ETH/USDT", BTC).symbols == (BTC, "ETH/USDT")
    assert parse_features("close", BTC).warmup == 1


@pytest.mark.parametrize(
    "text, warmup, first",
    [("close", 1, 512), ("range", 0, 512), ("volatility:48", 48, 559), ("volume:600", 599, 1110)],
)
def test_first_decision_waits_for_warmup_and_a_full_window(text, warmup, first):
    spec = parse_features(text, BTC)
    assert (spec.warmup, spec.first_decision(512)) == (warmup, first)
    # the first window [first-511, first] starts at a real value (never before index 1)
    assert first - 511 == max(warmup, 1)


def test_decision_mask_waits_for_the_features():
    filled = np.zeros(700, dtype=bool)
    filled[[3, 600]] = True
    close = feature_decision_mask(parse_features("close,range", BTC), 700, 64, filled)
    assert np.array_equal(close, decision_mask(700, 64, filled))
    slow = feature_decision_mask(parse_features("close,volatility:48", BTC), 700, 64, filled)
    assert np.flatnonzero(slow)[0] == 48 + 63 and np.array_equal(slow[111:], close[111:])


def test_saved_spec_round_trips_and_its_hash_is_stable():
    spec = parse_features("close,ret,volume:48,ret@ETH/USDT,ret@XRP/USDT:USDT", BTC)
    saved = json.loads(json.dumps(spec.to_dict()))
    assert FeatureSpec.from_dict(saved) == spec
    # a change here changes every saved run's hash: it must be deliberate
    assert spec.hash == "0308f1194279a829" and saved["hash"] == spec.hash
    body = {k: saved[k] for k in ("symbol", "features")}  # the canonical JSON, as documented
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    assert spec.hash == hashlib.sha256(canonical).hexdigest()[:16]
    others = ["close,ret,volume:24,ret@ETH/USDT,ret@XRP/USDT:USDT", "close,ret,volume:48"]
    others += ["ret,close,volume:48,ret@ETH/USDT,ret@XRP/USDT:USDT"]
    hashes = {parse_features(t, BTC).hash for t in others} | {spec.hash}
    hashes.add(parse_features(spec.text, "SOL/USDT").hash)
    assert len(hashes) == 5


@pytest.mark.parametrize(
    "text, words",
    [
        ("", "empty"),
        ("close,,ret", "empty item"),
        ("colse", "unknown feature 'colse'"),
        ("volume:0", "volume:0"),
        ("volume:1", ">= 2"),
        ("volume:x", "volume:x"),
        ("volatility:", "volatility:"),
        ("volume:-3", "whole number"),
        ("volume:1.5", "whole number"),
        ("ret:5", "takes no parameter"),
        ("close:2", "takes no parameter"),
        ("ret@", "no symbol"),
        ("ret@ETH", "not a ccxt symbol"),
        ("ret@ETH/USDT@X", "not a ccxt symbol"),
        ("close,close", "listed twice"),
        ("volume,volume:48", "listed twice"),
        ("ret,ret@BTC/USDT", "listed twice"),
    ],
)
def test_bad_feature_lists_are_one_line_errors(text, words):
    with pytest.raises(FcError) as error:
        parse_features(text, BTC)
    assert words in str(error.value) and "\n" not in str(error.value)


def test_bad_decided_symbol_is_refused():
    with pytest.raises(FcError, match="--symbol 'BTCUSDT'"):
        parse_features("close", "BTCUSDT")


def test_saved_spec_of_an_unknown_feature_or_edited_is_refused():
    saved = parse_features("close,ret", BTC).to_dict()
    saved["features"][1]["name"] = "orderbook"
    with pytest.raises(FcError) as error:
        FeatureSpec.from_dict(saved)
    assert str(error.value) == "this fc does not know feature 'orderbook'; upgrade fc or retrain"
    edited = parse_features("volume:24", BTC).to_dict()
    edited["features"][0]["param"] = 12
    with pytest.raises(FcError, match="does not match its hash"):
        FeatureSpec.from_dict(edited)
    with pytest.raises(FcError, match="malformed"):
        FeatureSpec.from_dict({"symbol": BTC})
    edited["features"][0]["param"] = 0
    with pytest.raises(FcError, match="volume:0"):
        FeatureSpec.from_dict(edited)


def test_align_cuts_to_the_overlap_and_combines_filled_bars():
    btc = seeded_grid(400, seed=1, drop=(50, 51))
    eth = seeded_grid(400, seed=2, drop=(120,)).iloc[30:]  # starts later
    cut, filled = align_symbols({BTC: btc.iloc[:350], "ETH/USDT": eth})
    assert list(cut) == [BTC, "ETH/USDT"]
    assert cut[BTC].index.equals(btc.index[30:350]) and cut["ETH/USDT"].index.equals(
        eth.index[:320]
    )
    want = btc["filled"].to_numpy()[30:350] | eth["filled"].to_numpy()[:320]
    assert np.array_equal(filled, want) and filled.sum() == 3
    assert filled[50 - 30] and filled[51 - 30] and filled[120 - 30]


def test_align_refuses_grids_that_differ_inside_the_overlap():
    btc = seeded_grid(100, drop=())
    gappy = make_candles(100, seed=3).drop(make_candles(100).index[40])  # not on a full grid
    with pytest.raises(FcError) as error:
        align_symbols({BTC: btc, "ETH/USDT": gappy})
    message = str(error.value)
    assert "BTC/USDT and ETH/USDT" in message and str(btc.index[40]) in message
    shifted = btc.copy()
    shifted.index = shifted.index + pd.Timedelta(1, "min")
    with pytest.raises(
        FcError, match=re.escape(str(shifted.index[0]))
    ):  # the first bar of the overlap
        align_symbols({BTC: btc, "SOL/USDT": shifted})
    hourly = to_grid(make_candles(50, timeframe="1h"), "1h")
    with pytest.raises(FcError, match="same timeframe"):
        align_symbols({BTC: btc, "ETH/USDT": hourly})
    later = to_grid(make_candles(50, start="2025-01-01"), "5m")
    with pytest.raises(FcError, match="do not overlap"):
        align_symbols({BTC: btc, "ETH/USDT": later})


def test_build_refuses_a_missing_symbol_and_too_short_data():
    grid = seeded_grid(100, drop=())
    with pytest.raises(FcError, match="ETH/USDT"):
        build_columns(parse_features("ret@ETH/USDT", BTC), {BTC: grid}, "5m")
    with pytest.raises(FcError, match="101 bars"):
        build_columns(parse_features("volatility:100", BTC), {BTC: grid}, "5m")


def test_close_normalisation_is_todays_fit_scaling_bit_for_bit():
    grid = seeded_grid(600)
    series = make_series(grid, 32, grid.index[400])
    train_last = int(np.flatnonzero(series.train)[-1])
    spec = parse_features("ret,close", BTC)
    columns = build_columns(spec, {BTC: grid}, "5m")
    center, scale = fit_normalisation(columns, spec, train_last, "std")
    today = Scaling(*fit_scaling(series, "std"))
    assert (center[1], scale[1]) == (today.center, today.scale)
    x = normalise(columns, center, scale)
    assert np.array_equal(x[:, 1], today.apply(series.features))
    ret = columns[1 : train_last + 1, 0]  # ret's warm-up is 1 too
    assert center[0] == pytest.approx(ret.mean(), rel=1e-12)
    assert scale[0] == pytest.approx(ret.std(), rel=1e-12)
    assert (fit_normalisation(columns, spec, train_last, "none")[1] == 1).all()


def test_other_columns_are_normalised_from_warmup_to_the_last_training_bar():
    grid = seeded_grid(600)
    spec = parse_features("volatility:20,wicks", BTC)
    grid.loc[:, "high"] = grid[["open", "close"]].max(axis=1)  # no upper wick: a zero std
    columns = build_columns(spec, {BTC: grid}, "5m")
    columns[301:] = 1e6  # after the training range: must not move the fit
    center, scale = fit_normalisation(columns, spec, 300, "std")
    vol = columns[20:301, 0]
    np.testing.assert_allclose([center[0], scale[0]], [vol.mean(), vol.std()], rtol=1e-12)
    assert (center[1], scale[1]) == (0.0, 1.0)
    with pytest.raises(FcError, match="warm up"):
        fit_normalisation(columns, spec, 19, "std")
    with pytest.raises(FcError, match="--scaling 'minmax'"):
        fit_normalisation(columns, spec, 300, "minmax")
