"""Why a candle of `fc paper diff` differs. Each check looks at the first differing candle (row i
of the comparison table, live/diff.py) and returns a sentence when it sees its cause, else None;
every cause seen is reported. One more cause is one more check and one more line in REASONS."""

import json

import numpy as np
import pandas as pd

from fc.core.evaluation.policies import POLICIES
from fc.live.service import iso

TOLERANCE = 1e-9  # p_up and positions absolute, wealth relative to the journal's
# Closes are compared exactly: the same decimal strings parse to the same floats, and the graph
# computes in float32, where a change in a close's last digits can move p_up by 1e-8.
CLOSE_RTOL = 0.0


def candle_missing(c, i: int) -> str | None:
    row = c.table.iloc[i]
    if pd.isna(row["j_kind"]):
        return "the journal has no row for this candle (a downtime longer than the service fetches)"
    if pd.isna(row["b_close"]):
        return "the candles (exchange or --data) do not reach this candle"
    if row["j_kind"] == "decision" and not row["b_real"]:
        return "the exchange or --data has no candle here; the journal decided on one"
    if row["j_kind"] == "decision" and not row["b_decided"]:
        return f"the candles do not hold the {c.seq_len} changes before this candle"
    return None


def close_different(c, i: int) -> str | None:
    """A close of this candle or of its window (the closes p_up read) that the journal saw
    otherwise."""
    window = c.table.iloc[max(0, i - c.seq_len) : i + 1]
    j, b = window["j_close"].to_numpy(float), window["b_close"].to_numpy(float)
    with np.errstate(invalid="ignore"):
        bad = np.flatnonzero(np.abs(j - b) > CLOSE_RTOL * np.abs(j))
    if len(bad) == 0:
        return None
    k = bad[-1]
    more = f" (and {len(bad) - 1} more in its window)" if len(bad) > 1 else ""
    when, was, now = iso(int(window.index[k])), float(j[k]), float(b[k])
    return (
        f"close of {when}: journal {was!r}, candles {now!r}{more}; the exchange or --data "
        "changed a candle the service read"
    )


def held_through_downtime(c, i: int) -> str | None:
    row = c.table.iloc[i]
    if row["j_kind"] == "held" and row["b_decided"]:
        return (
            "the service held this candle without deciding (it was down, or the exchange had no "
            "candle then); the backtest decided it"
        )
    return None


def model_different(c, i: int) -> str | None:
    sha = c.table.iloc[i]["j_model_sha256"]
    if isinstance(sha, str) and sha and c.model_sha256 and sha != c.model_sha256:
        return (
            f"the journal's row was written with model {sha[:12]}, the diff predicts with "
            f"{c.model_sha256[:12]} ({c.predictions}); give that model with --model"
        )
    return None


def fee_different(c, i: int) -> str | None:
    if c.fee_journal is not None and abs(c.fee_journal - c.fee_bps) > 1e-6:
        return (
            f"the journal's wealth implies a fee of {c.fee_journal:g} bps, the diff used "
            f"{c.fee_bps:g} (--fee-bps)"
        )
    return None


def policy_params(c, i: int) -> str | None:
    """The journal's recorded parameters against the backtest's; where the journal has none
    recorded (a journal older than the column), the positions tell."""
    row = c.table.iloc[i]
    for p in POLICIES:
        recorded = row.get(f"j_policy_params_{p}")
        used = c.policy_params.get(p)
        if isinstance(recorded, str) and recorded and used is not None:
            if json.loads(recorded) != used.to_dict():
                return (
                    f"{p}: the service used {recorded}, the backtest {used.to_dict()} (the "
                    "model's metadata); give the same parameters to both"
                )
    same_p = all(_close(row, f"p_up_{p}") for p in POLICIES)
    if same_p and not all(_close(row, f"position_{p}") for p in POLICIES):
        return "the same p_up gave other positions: the policy parameters differ"
    return None


def journal_edited(c, i: int) -> str | None:
    p = [c.table.iloc[i][f"j_p_up_{policy}"] for policy in POLICIES]
    if not all(pd.isna(p)) and len(set(p)) > 1:
        return f"the journal's rows of this candle disagree on p_up ({p}): edited by hand?"
    return None


def torch_predictions(c, i: int) -> str | None:
    row = c.table.iloc[i]
    if c.predictions == "torch" and not all(_close(row, f"p_up_{p}") for p in POLICIES):
        return (
            "p_up from the run's torch model, not the exported graph the service ran: they "
            "agree to about 1e-6, not 1e-9; give --model FILE.onnx"
        )
    return None


def _close(row, name: str) -> bool:
    j, b = row[f"j_{name}"], row[f"b_{name}"]
    return (pd.isna(j) and pd.isna(b)) or abs(j - b) <= TOLERANCE


REASONS = (
    ("candle_missing", candle_missing),
    ("close_different", close_different),
    ("held_through_downtime", held_through_downtime),
    ("model_different", model_different),
    ("fee_different", fee_different),
    ("policy_params_different", policy_params),
    ("journal_edited", journal_edited),
    ("torch_predictions", torch_predictions),
)
