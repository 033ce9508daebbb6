"""Replay parity through the CLI: `fc paper --replay` journals the same positions as
`fc backtest --model` (the same exported graph) and wealth equal to 1e-9 relative, both policies,
for a single model and for a calibrated seed ensemble (one graph, members inside)."""

import json
import sqlite3

import numpy as np
import pandas as pd
import pytest
from export_runs import synth_run
from typer.testing import CliRunner

from fc.cli.main import app

runner = CliRunner()
SEQ = 48
SPLIT = "2023-01-20"


def journal_rows(journal) -> pd.DataFrame:
    with sqlite3.connect(journal) as db:
        return pd.read_sql("SELECT * FROM decisions ORDER BY candle_ms", db)


def assert_policy_equals_backtest(got: pd.DataFrame, backtest: pd.DataFrame, policy: str,
                                  positions: bool = True) -> None:  # fmt: skip
    """A policy's journal rows against `fc backtest`'s positions.parquet: positions exactly,
    wealth to 1e-9. The journal's wealth at candle t is realised at t's close; the backtest's
    row t holds the wealth after f_t earned R_{t+1}, i.e. the journal's at t+1."""
    if positions:
        np.testing.assert_array_equal(
            got["position"].to_numpy()[:-1], backtest[f"position_{policy}"].to_numpy()
        )
    np.testing.assert_allclose(
        got["wealth"].to_numpy()[1:], backtest[f"wealth_{policy}"].to_numpy(), rtol=1e-9, atol=0
    )


@pytest.fixture(scope="module", params=[(0, 1.0), (3, 0.8)], ids=["single", "ensemble"])
def exported_run(tmp_path_factory, request):
    root = tmp_path_factory.mktemp("parity")
    members, temperature = request.param
    # an outage inside the replayed range
    data = synth_run(root, days=30, seed=11, outage=[1000, 1001], seq_len=SEQ, split=SPLIT,
                     members=members, temperature=temperature)  # fmt: skip
    result = runner.invoke(app, ["export", str(root), "--onnx", "--json"])
    assert result.exit_code == 0, result.output
    return root, data


def test_replay_equals_backtest_with_the_same_graph(exported_run, tmp_path):
    run, data = exported_run
    model = run / "export" / "model.onnx"
    result = runner.invoke(
        app,
        ["backtest", str(run), "--model", str(model), "--fee-bps", "5", "--start", SPLIT, "--json"],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["predictions"] == str(model)
    backtest = pd.read_parquet(run / "backtest" / "positions.parquet")
    assert set(backtest["range"]) == {"validation"}

    journal = tmp_path / "replay.sqlite"
    result = runner.invoke(
        app,
        [
            "paper",
            "--replay",
            str(data),
            "--model",
            str(model),
            "--journal",
            str(journal),
            "--fee-bps",
            "5",
            "--capital",
            "1",
            "--start",
            SPLIT,
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = journal_rows(journal)
    times = pd.DatetimeIndex(backtest["time"]).as_unit("ns").asi8 // 1_000_000
    for policy in ("discrete", "proportional"):
        got = rows[rows.policy == policy].set_index("candle_ms")
        assert list(got.index[:-1]) == list(times)  # one row per bar, the last closes the range
        assert_policy_equals_backtest(got, backtest, policy)


# the seeded model reads p_up 0.53..0.58: this band leaves the discrete policy flat about half
# the time; the cap and the threshold bind on the proportional policy's 0.05..0.17
POLICY = {"--band": "0.06", "--rebalance": "0.01", "--cap": "0.1", "--min-hold": "3"}


def test_replay_equals_backtest_with_non_default_policy_parameters(tmp_path_factory, tmp_path):
    """Exported parameters drive the replay (no option given to fc paper); the backtest gets the
    same ones on its command line. Positions equal exactly, wealth to 1e-9, outage inside."""
    run = tmp_path_factory.mktemp("policy-parity")
    data = synth_run(run, days=30, seed=11, outage=[1000, 1001], seq_len=SEQ, split=SPLIT)
    options = [*sum(POLICY.items(), ()), "--flat-inside"]
    result = runner.invoke(app, ["export", str(run), "--onnx", *options, "--json"])
    assert result.exit_code == 0, result.output
    model = run / "export" / "model.onnx"
    args = ["backtest", str(run), "--model", str(model), "--fee-bps", "5", "--start", SPLIT]
    result = runner.invoke(app, [*args, *options, "--json"])
    assert result.exit_code == 0, result.output
    backtest = pd.read_parquet(run / "backtest" / "positions.parquet")
    journal = tmp_path / "replay.sqlite"
    result = runner.invoke(
        app,
        ["paper", "--replay", str(data), "--model", str(model), "--journal", str(journal),
         "--fee-bps", "5", "--capital", "1", "--start", SPLIT, "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = journal_rows(journal)
    assert (rows["kind"] == "held").sum() == 4  # the outage's two bars, both policies
    for policy in ("discrete", "proportional"):
        got = rows[rows.policy == policy].set_index("candle_ms")
        used = {json.loads(p)["cap"] for p in got["policy_params"]}
        assert used == {0.1}
        want = backtest[f"position_{policy}"].to_numpy()
        assert_policy_equals_backtest(got, backtest, policy)
        changes = np.flatnonzero(np.diff(want, prepend=0.0))
        assert np.diff(changes).min() >= 3  # the minimum hold binds...
        assert 0 < len(changes) < len(want) / 3  # ...and a trade is rarer than every third bar
    discrete = backtest["position_discrete"].to_numpy()
    assert set(discrete) == {0.0, 0.1}  # flat inside the band, long (capped) above it
