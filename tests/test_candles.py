"""Candles: resampling against the exchange's own 30m bars, the regular grid, validation."""

import numpy as np
import pandas as pd
import pytest

from fc.core.data.candles import (
    OHLCV,
    gap_report,
    load_candles,
    resample,
    timeframe_delta,
    to_grid,
    validate_candles,
)
from fc.core.errors import FcError


def test_resample_5m_matches_exchange_30m_on_every_complete_bin(shared_data):
    five = load_candles(shared_data / "btc_usdt_5m.parquet")
    thirty = load_candles(shared_data / "btc_usdt_30m.parquet")
    ours = resample(five, "30m")
    counts = five["close"].groupby(five.index.floor("30min")).size()
    complete = counts.index[counts == 6]
    shared = complete.intersection(thirty.index)
    assert len(shared) > 23_000  # 23,768 complete bins of 23,769 shared
    a, b = ours.loc[shared], thirty.loc[shared]
    for col in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(a[col].to_numpy(), b[col].to_numpy(), err_msg=col)
    np.testing.assert_allclose(a["volume"], b["volume"], rtol=1e-9, atol=0)


def test_resample_partial_bins_and_gaps(candles_factory):
    five = candles_factory(n=36, timeframe="5min", start="2024-01-01 00:00")
    # drop two bars inside the first bin, and the whole third bin (a gap)
    dropped = five.index[[1, 2]].append(five.index[12:18])
    five = five.drop(dropped)
    out = resample(five, "30m")
    assert list(out.index.strftime("%H:%M")) == ["00:00", "00:30", "01:30", "02:00", "02:30"]
    first = five[five.index < "2024-01-01 00:30"]  # what is left of 00:00-00:30
    assert out.iloc[0]["open"] == first["open"].iloc[0]
    assert out.iloc[0]["high"] == first["high"].max()
    assert out.iloc[0]["low"] == first["low"].min()
    assert out.iloc[0]["close"] == first["close"].iloc[-1]
    assert out.iloc[0]["volume"] == pytest.approx(first["volume"].sum(), rel=1e-12)

    grid = to_grid(out, "30m")
    assert list(grid.index.strftime("%H:%M")) == [
        "00:00",
        "00:30",
        "01:00",
        "01:30",
        "02:00",
        "02:30",
    ]
    assert grid["filled"].tolist() == [False, False, True, False, False, False]
    gap = grid.iloc[2]
    prev_close = out.iloc[1]["close"]
    assert (gap[["open", "high", "low", "close"]] == prev_close).all() and gap["volume"] == 0
    assert not grid[OHLCV].isna().any().any()
    assert gap_report(out, "30m") == {"gaps": 1, "missing": 1}


def test_resample_refuses_a_non_multiple(candles_factory):
    with pytest.raises(FcError, match="whole multiple"):
        resample(candles_factory(n=20, timeframe="30min"), "45m")
    with pytest.raises(FcError, match="timeframe"):
        timeframe_delta("30 minutes")


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda df: df.iloc[[0, 1, 1, 2]], "duplicate"),
        (lambda df: df.iloc[[0, 2, 1]], "back in time"),
        (lambda df: df.assign(close=np.r_[np.nan, df["close"].to_numpy()[1:]]), "NaN"),
        (lambda df: df.assign(low=-df["low"]), "price <= 0"),
        (lambda df: df.assign(high=df["low"] * 0.5), "high < low"),
    ],
)
def test_validation_refuses_bad_candles(candles_factory, corrupt, message):
    with pytest.raises(FcError, match=message):
        validate_candles(corrupt(candles_factory(n=10)))


def test_load_round_trips_csv_feather_json(tmp_path, candles_factory):
    df = candles_factory(n=50)
    csv = tmp_path / "c.csv"
    df.reset_index().to_csv(csv, index=False)
    feather = tmp_path / "c.feather"
    df.reset_index().rename(columns={"timestamp": "date"}).to_feather(feather)
    js = tmp_path / "c.json"
    ms = df.index.asi8 // 1_000_000
    rows = np.column_stack([ms, df[OHLCV].to_numpy()]).tolist()
    js.write_text(pd.Series(rows).to_json(orient="values"))
    for path in (csv, feather, js):
        got = load_candles(path)
        pd.testing.assert_frame_equal(got, df, check_freq=False, rtol=1e-12)
