"""Replay: the live service over recorded candles gives the backtest's positions and wealth."""

import numpy as np
import pandas as pd
import pytest
import torch
from live_models import make_onnx_model

from fc.core.data.candles import grid_at, load_candles
from fc.core.data.features import price_change
from fc.core.data.synth import synth_candles
from fc.core.evaluation.backtest import BacktestConfig, run_backtest
from fc.core.evaluation.policies import POLICIES
from fc.core.learning.model import window_p_up
from fc.live.journal import Journal
from fc.live.predictor import load_predictor
from fc.live.replay import recorded_candles, replay
from fc.live.service import PaperConfig

SEQ = 64
FAR = "2100-01-01"  # one backtest range: everything before the split


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    torch.set_num_threads(1)
    return make_onnx_model(tmp_path_factory.mktemp("model"), seq_len=SEQ)


def replay_and_backtest(candles, onnx_model, fee_bps=0.0, p_up="torch"):
    path, model, scaling = onnx_model
    predictor = load_predictor(path)
    journal = Journal(":memory:")
    config = PaperConfig("BTC/USDT", "30m", fee_bps=fee_bps, capital=1.0)
    result = replay(candles, predictor, journal, config)
    rows = journal.decisions()
    grid = grid_at(candles, "30m")
    ms = grid.index.as_unit("ns").asi8 // 1_000_000
    p = np.full(len(grid), np.nan)
    ends = np.arange(SEQ, len(grid))
    if p_up == "torch":  # the backtest's own prediction path
        p[ends] = window_p_up(model, price_change(grid["close"].to_numpy()), ends, SEQ, scaling)
    else:  # the p_up the service journalled (ONNX): isolates the accounting
        got = rows[(rows.policy == "discrete") & (rows.kind == "decision")]
        p[np.searchsorted(ms, got.candle_ms.to_numpy())] = got.p_up.to_numpy()
    p[grid["filled"].to_numpy()] = np.nan
    frame, _ = run_backtest(grid, p, SEQ, FAR, BacktestConfig(fee_bps=fee_bps), "30m")
    return result, rows, frame, ms


def compare(rows, frame, ms):
    """Per policy: max |position diff| and max relative wealth diff (backtest wealth at t is the
    journal's at t+1, the next close)."""
    out = {}
    times = pd.DatetimeIndex(frame.time).as_unit("ns").asi8 // 1_000_000
    for policy in POLICIES:
        got = rows[rows.policy == policy].set_index("candle_ms")
        assert list(got.index) == list(times) + [got.index[-1]]
        f = got.position.to_numpy()[:-1]
        w = got.wealth.to_numpy()[1:]
        want_f = frame[f"position_{policy}"].to_numpy()
        want_w = frame[f"wealth_{policy}"].to_numpy()
        out[policy] = (np.abs(f - want_f).max(), np.abs(w / want_w - 1).max())
    return out


def test_replay_matches_the_backtest_on_the_same_p_up(onnx_model):
    candles = synth_candles(days=8, timeframe="30m", seed=3)
    _, rows, frame, ms = replay_and_backtest(candles, onnx_model, fee_bps=4.0, p_up="journal")
    for policy, (df, dw) in compare(rows, frame, ms).items():
        assert df == 0.0, policy
        assert dw < 1e-12, policy


def test_replay_positions_match_torch_window_p_up(onnx_model):
    candles = synth_candles(days=8, timeframe="30m", seed=4)
    result, rows, frame, ms = replay_and_backtest(candles, onnx_model)
    assert result.decisions == 8 * 48 - SEQ and result.skipped == 0
    diffs = compare(rows, frame, ms)
    print(
        "synthetic",
        {p: {"position": float(a), "wealth_rel": float(b)} for p, (a, b) in diffs.items()},
    )
    assert diffs["discrete"][0] == 0.0
    assert diffs["proportional"][0] < 1e-5
    assert max(dw for _, dw in diffs.values()) < 1e-5


def test_replay_holds_through_exchange_outages_like_the_backtest(onnx_model):
    candles = synth_candles(days=8, timeframe="30m", seed=5)
    candles = candles.drop(candles.index[[100, 101, 102, 250]])
    result, rows, frame, ms = replay_and_backtest(candles, onnx_model, fee_bps=2.0, p_up="journal")
    assert result.skipped == 4
    held = rows[(rows.kind == "held") & (rows.policy == "discrete")]
    assert len(held) == 4
    for policy, (df, dw) in compare(rows, frame, ms).items():
        assert df == 0.0 and dw < 1e-12, policy


def test_replay_reads_a_finer_file_resampled(onnx_model, tmp_path):
    fine = synth_candles(days=4, timeframe="5m", seed=6)
    path = tmp_path / "fine.parquet"
    fine.to_parquet(path)
    candles = recorded_candles(path, "30m")
    want = grid_at(load_candles(path), "30m").drop(columns="filled")
    pd.testing.assert_frame_equal(candles, want, check_freq=False)


@pytest.mark.shared_data
@pytest.mark.parametrize(
    "first, last", [("2024-03-01", "2024-03-20"), ("2021-08-01", "2021-08-20")]
)
def test_replay_parity_on_real_candles(onnx_model, shared_data, first, last):
    """The second range holds the file's longest gap (5 h before 2021-08-13 06:30)."""
    candles = load_candles(shared_data / "btc_usdt_30m.parquet").loc[first:last]
    _, rows, frame, ms = replay_and_backtest(candles, onnx_model, fee_bps=5.0)
    diffs = compare(rows, frame, ms)
    print(first, {p: {"position": float(a), "wealth_rel": float(b)} for p, (a, b) in diffs.items()})
    assert diffs["discrete"][0] == 0.0
    assert diffs["proportional"][0] < 1e-5
    _, rows, frame, ms = replay_and_backtest(candles, onnx_model, fee_bps=5.0, p_up="journal")
    for policy, (df, dw) in compare(rows, frame, ms).items():
        assert df == 0.0 and dw < 1e-9, policy
