"""Performance and classifier metrics (SPEC §2), and a stationary block bootstrap for their
uncertainty. Pure numpy; every number here can be recomputed by hand from positions.parquet."""

import functools
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from fc.core.evaluation.policies import book_moves, break_even_cost

MINUTES_PER_YEAR = 365 * 24 * 60
THREADS = min(2, os.cpu_count() or 1)  # bootstrap_cis: 2.4x on 2 cores for a backtest's six
ROW_BLOCK = 5  # resamples gathered at once by bootstrap_cis (bench/full_backtest_speed.py)


def bars_per_year(bar_minutes: float) -> float:
    """17,520 for 30-minute bars."""
    return MINUTES_PER_YEAR / bar_minutes


def max_drawdown(wealth: np.ndarray) -> float:
    """Largest fall from a running peak, as a positive fraction (0.25 = 25 % below the peak)."""
    w = np.concatenate([[1.0], np.asarray(wealth, dtype=np.float64)])
    return float(np.max(1.0 - w / np.maximum.accumulate(w)))


def sharpe(step_returns: np.ndarray, per_year: float) -> float:
    r = np.asarray(step_returns, dtype=np.float64)
    sd = r.std(ddof=1) if len(r) > 1 else 0.0
    return float(r.mean() / sd * np.sqrt(per_year)) if sd > 0 else 0.0


def performance(
    factors: np.ndarray, positions: np.ndarray, returns: np.ndarray, per_year: float
) -> dict:
    """Metrics of one policy from its per-step growth factors, positions and next returns; or
    of a portfolio from its weights and its symbols' next returns, both (bars, symbols): the
    turnover is then sum_s |Δw_s| a bar, the exposure sum_s |w_s| (gross) and a hit a bar
    whose sum_s w_s R_s is positive."""
    factors = np.asarray(factors, dtype=np.float64)
    n = len(factors)
    if n == 0:
        return {"final_wealth": 1.0, "decisions": 0, "sharpe": 0.0, "max_drawdown": 0.0}
    wealth = np.cumprod(factors)
    step = factors - 1.0
    log_total = float(np.sum(np.log(np.maximum(factors, 1e-300))))
    years = n / per_year
    downside = np.sqrt(np.mean(np.minimum(step, 0.0) ** 2))
    annual_log = log_total / years
    mdd = max_drawdown(wealth)
    pnl, moved = book_moves(positions, returns)
    gross = np.abs(positions).reshape(n, -1).sum(axis=1)
    traded = gross != 0
    return {
        "final_wealth": float(wealth[-1]),
        "decisions": int(n),
        "total_log_return": log_total,
        "annual_log_return": annual_log,
        "annual_volatility": float(step.std(ddof=1) * np.sqrt(per_year)) if n > 1 else 0.0,
        "sharpe": sharpe(step, per_year),
        "sortino": float(step.mean() / downside * np.sqrt(per_year)) if downside > 0 else 0.0,
        "max_drawdown": mdd,
        "calmar": float(annual_log / mdd) if mdd > 0 else 0.0,
        "turnover": float(moved.mean()),
        "hit_rate": float((pnl[traded] > 0).mean()) if traded.any() else 0.0,
        "exposure": float(gross.mean()),
        **trade_stats(positions, returns),
    }


def trade_stats(positions: np.ndarray, returns: np.ndarray) -> dict:
    """Trades (position changes, the entry from flat included), the mean holding time (bars from
    the first trade to the range's end over trades: the last spell is cut by the end) and the
    break-even fee in bps (policies.break_even_cost; None: never trades or loses without fees).
    A portfolio (bars, symbols): a trade is one symbol's change of weight, and the holding time
    sums each symbol's bars from its first trade."""
    f = np.asarray(positions, dtype=np.float64)
    book = f.reshape(len(f), -1)
    changed = np.diff(book, axis=0, prepend=0.0) != 0
    trades = int(changed.sum())
    first = changed.argmax(axis=0)[changed.any(axis=0)]  # each trading symbol's first trade
    cost = break_even_cost(f, returns)
    return {
        "trades": trades,
        "mean_holding_bars": float((len(f) - first).sum() / trades) if trades else None,
        "break_even_fee_bps": None if cost is None else cost * 1e4,
    }


def classifier(p_up: np.ndarray, label: np.ndarray, hard: bool = False) -> dict:
    """Accuracy, log loss, Brier score and expected calibration error (core.calibration.ece,
    10 equal-width bins) of p_up against labels (0 = up, 1 = down). A hard 0/1 predictor has no
    meaningful log loss: None."""
    from fc.core.evaluation.calibration import ece

    up = np.asarray(label) == 0
    calibration_error = ece(p_up, up) if len(up) else float("nan")
    p_up = np.clip(np.asarray(p_up, dtype=np.float64), 1e-12, 1 - 1e-12)
    predicted_up = p_up >= 0.5
    return {
        "accuracy": float((predicted_up == up).mean()) if len(up) else 0.0,
        "log_loss": None if hard else float(-np.mean(np.where(up, np.log(p_up), np.log(1 - p_up)))),
        "brier": float(np.mean((p_up - up) ** 2)),
        "ece": calibration_error,
    }


def stationary_bootstrap_index(n: int, reps: int, mean_block: float, rng) -> np.ndarray:
    """(reps, n) int32 indices of Politis & Romano's stationary bootstrap: blocks of geometric
    length (mean `mean_block`) starting at uniform positions, wrapping around the end. Row r's j-th
    block starts at starts[r, j]; built block by block (np.repeat of each block's shift) rather
    than with running sums over every index, which drew the same indices ~2x slower."""
    new_block = rng.random((reps, n)) < 1.0 / mean_block
    new_block[:, 0] = True
    starts = rng.integers(0, n, size=(reps, n))  # more starts than blocks; only the first used
    first = np.flatnonzero(new_block)  # each block's first index, row-major over (reps, n)
    row, pos = np.divmod(first, n)
    nth = np.arange(len(first)) - np.searchsorted(first, np.arange(reps) * n)[row]
    shift = (starts[row, nth] - pos).astype(np.int32)  # index = position + its block's shift
    out = np.repeat(shift, np.diff(first, append=reps * n)).reshape(reps, n)
    out += np.arange(n, dtype=np.int32)  # now in [0, 2n): wrap the end around once
    out[out >= n] -= n
    return out


@functools.lru_cache(maxsize=1)
def _bootstrap_indices(n: int, reps: int, mean_block: float, seed: int, chunk: int) -> tuple:
    """The resampling indices of bootstrap_cis, chunk by chunk, kept for the next call: a
    range's classifier differences are bootstrapped over its strategies' bars again (in the
    train range one bar fewer: another draw). int32: 114 MB for 57k bars. Futures: the chunks
    are drawn in order on a thread of their own (one rng, one order: the same indices), so
    bootstrap_cis resamples one chunk while the next is drawn."""
    rng = np.random.default_rng(seed)
    drawer = ThreadPoolExecutor(1)
    chunks = tuple(
        drawer.submit(stationary_bootstrap_index, n, min(chunk, reps - done), mean_block, rng)
        for done in range(0, reps, chunk)
    )
    drawer.shutdown(wait=False)  # the queued draws still run; the thread ends after the last
    return chunks


def bootstrap_ci(
    values: np.ndarray,
    statistic,
    reps: int = 500,
    mean_block: float = 48.0,
    level: float = 0.95,
    seed: int = 0,
    chunk: int = 50,
) -> tuple[float, float]:
    """Percentile interval of statistic(resampled values) under the stationary bootstrap.
    `statistic` maps a (reps, n) array to (reps,) results, each from its own row alone."""
    return bootstrap_cis([values], statistic, reps, mean_block, level, seed, chunk)[0]


def bootstrap_cis(
    series: list,
    statistic,
    reps: int = 500,
    mean_block: float = 48.0,
    level: float = 0.95,
    seed: int = 0,
    chunk: int = 50,
) -> list[tuple[float, float]]:
    """bootstrap_ci of each of several series of one length, each the same interval as alone:
    the same seed draws the same indices, so each chunk of them is drawn once and used for all
    (a backtest bootstraps every strategy of a range over the same bars). The series are
    resampled on THREADS threads (numpy lets go of the GIL while gathering and summing)."""
    series = [np.asarray(v, dtype=np.float64) for v in series]
    n = len(series[0]) if series else 0
    if n < 2:
        return [(float("nan"), float("nan"))] * len(series)
    stats = [[] for _ in series]
    with ThreadPoolExecutor(min(THREADS, len(series))) as pool:
        for chunk_drawn in _bootstrap_indices(n, reps, mean_block, seed, chunk):
            drawn = chunk_drawn.result()
            got = pool.map(lambda v, drawn=drawn: _row_blocks(statistic, v, drawn), series)
            for out, rows in zip(stats, got, strict=True):
                out.append(rows)
    tail = (1 - level) / 2
    return [
        (float(np.quantile(s, tail)), float(np.quantile(s, 1 - tail)))
        for s in map(np.concatenate, stats)
    ]


def _row_blocks(statistic, values: np.ndarray, drawn: np.ndarray) -> np.ndarray:
    """statistic(values[drawn]), ROW_BLOCK resamples at a time: the gathered rows then stay in
    the cache for the statistic's passes over them (3x faster than gathering 50 rows of 57k
    bars at once). Row-wise statistics reduce each row alone, so the result is the same bits."""
    return np.concatenate(
        [statistic(values[drawn[k : k + ROW_BLOCK]]) for k in range(0, len(drawn), ROW_BLOCK)]
    )


def sharpe_rows(per_year: float):
    """The Sharpe statistic for bootstrap_ci, row-wise."""

    def stat(rows: np.ndarray) -> np.ndarray:
        # rows.mean and rows.std(ddof=1) as numpy computes them, bit for bit, with one sum less
        mean = rows.sum(axis=1) / rows.shape[1]
        dev = rows - mean[:, None]
        np.multiply(dev, dev, out=dev)
        sd = np.sqrt(dev.sum(axis=1) / (rows.shape[1] - 1))
        return np.where(sd > 0, mean / np.where(sd > 0, sd, 1) * np.sqrt(per_year), 0)

    return stat


def mean_rows(rows: np.ndarray) -> np.ndarray:
    return rows.mean(axis=1)
