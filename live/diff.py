"""`fc paper diff`: the journal against the backtest recomputed from the same candles, candle by
candle (p_up, both policies' positions and wealth), with the first difference and its reasons.

The backtest is core's own: predict_bars with the same exported graph (its `p_up_at`), then
core.backtest.trade_mask and simulate, which hold positions through filled bars and compound
core.policies' wealth factors. Only the wealth convention is translated: the journal's row at
candle t holds the wealth realised at t's close, before f_t earns R_{t+1}; the backtest's row t
(positions.parquet) holds it after, i.e. the journal's at t+1. Here the backtest's factors are
compounded to the journal's convention, from the journal's first candle and capital. A run of
declared features is backtested on the columns core.data.inputs.with_features builds from the
candles of every symbol its spec reads.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fc.core.data.candles import grid_at, timeframe_ms
from fc.core.data.inputs import data_values, plain_close, with_features
from fc.core.errors import FcError
from fc.core.evaluation.backtest import simulate, trade_mask
from fc.core.evaluation.policies import POLICIES, held_positions
from fc.core.evaluation.schedule import Schedule
from fc.core.studies.backtest_run import predict_bars
from fc.live.diff_reasons import CLOSE_RTOL, REASONS, TOLERANCE
from fc.live.service import iso

QUANTITIES = ("p_up", *(f"{q}_{p}" for q in ("position", "wealth") for p in POLICIES), "close")


@dataclass
class Comparison:
    """The journal and the backtest side by side, one row per candle (open time, ms)."""

    table: pd.DataFrame  # j_<quantity>, b_<quantity>, j_kind, j_model_sha256, b_real, b_decided
    seq_len: int
    model_sha256: str  # of the graph predicting here; "" for the run's torch model
    fee_bps: float
    fee_journal: float | None  # the fee the journal's first step implies
    predictions: str
    policy_params: dict = field(default_factory=dict)  # {policy: PolicyParams} the backtest used
    differing: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))


def journal_fee_bps(rows: pd.DataFrame) -> float | None:
    """The fee c (bps) the journal's first step implies: W1/W0 = 1 + f0 R1 - c |trade0|, read on
    the first policy whose first row trades (with a band the discrete one may start flat); None
    when no policy has two rows and a first trade."""
    for policy in POLICIES:
        first = rows[rows.policy == policy].sort_values("candle_ms").head(2)
        if len(first) < 2 or first.trade.iloc[0] == 0:
            continue
        (w0, w1), (c0, c1) = first.wealth.to_numpy(), first.close.to_numpy()
        f0, trade0 = first.position.iloc[0], first.trade.iloc[0]
        return round(float((1.0 + f0 * (c1 / c0 - 1.0) - w1 / w0) / abs(trade0)) * 1e4, 6)
    return None


def backtest_table(candles, predict, seq_len: int, timeframe: str, first: int, last: int,
                   fee_bps: float, capital: dict, params: dict | None = None,
                   spec=None, schedule: Schedule = Schedule()) -> pd.DataFrame:  # fmt: skip
    """The backtest over the candles from `first` to `last` (open times, ms), one row per grid
    bar there, in the journal's wealth convention; `params` {policy: PolicyParams} (default: the
    workshop's policies): positions by core.policies, as the backtest and the service take them.
    `candles`: the decided symbol's frame, or with a feature `spec` {symbol: frame} of every
    symbol it reads. `schedule`: the graph's; p_up only on its decision candles, as the service
    predicts, the positions decided there and held between (core.evaluation.schedule)."""
    params = params or {}
    tf = timeframe_ms(timeframe)
    start = seq_len if spec is None else spec.first_decision(seq_len)  # bars before a decision
    frames = {None: candles} if spec is None else {s: candles[s] for s in spec.symbols}
    grids = {}
    for symbol, frame in frames.items():
        opens = frame.index.as_unit("ns").asi8 // 1_000_000
        if not ((opens >= first) & (opens <= last)).any():
            raise FcError(
                f"the {symbol or ''} candles have none from {iso(first)} to {iso(last)}, the "
                "journal's; give the --data file (or --exchange-url) the service traded"
            )
        grids[symbol] = grid_at(frame[(opens >= first - (start + 1) * tf) & (opens <= last + tf)],
                                timeframe)  # fmt: skip
    grid = grids[None] if spec is None else with_features(spec, grids, timeframe)
    times = grid.index.as_unit("ns").asi8 // 1_000_000
    grid = grid[times <= last + tf]
    if len(grid) and times[len(grid) - 1] == last:
        # the backtest decides a bar only when a next one exists; the journal's last candle is
        # compared before its next return is known, so a filled placeholder stands in for it
        extra = grid.iloc[[-1]].assign(filled=True, volume=0.0)
        extra.index = extra.index + pd.Timedelta(tf, "ms")
        grid = pd.concat([grid, extra])
    times = grid.index.as_unit("ns").asi8 // 1_000_000
    filled = grid["filled"].to_numpy()
    close = grid["close"].to_numpy(dtype=np.float64)
    decide = trade_mask(filled, start)
    part = (times >= first) & (times <= last)
    decided = decide & part & schedule.decision_candles(grid.index, timeframe)
    p_up = predict_bars(predict, grid, decided)
    out = {"b_close": close, "b_real": ~filled, "b_decided": decided, "b_p_up": p_up}
    for policy in POLICIES:
        positions = schedule.book(
            lambda m, policy=policy: held_positions(policy, np.nan_to_num(p_up, nan=0.5), m,
                                                    params.get(policy)),
            decide & part, grid.index, timeframe,
        )  # fmt: skip
        f, _, factors = simulate(close, positions, decide, part, fee_bps / 1e4)
        held = np.full(len(grid), np.nan)
        held[part] = f
        wealth = np.full(len(grid), np.nan)
        wealth[part] = capital[policy] * np.r_[1.0, np.cumprod(factors)[:-1]]
        out[f"b_position_{policy}"], out[f"b_wealth_{policy}"] = held, wealth
    table = pd.DataFrame(out, index=pd.Index(times, name="candle_ms"))
    return table[part]


def journal_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per candle: kind, close, model hash, and each policy's p_up, position, wealth."""
    out = None
    for policy in POLICIES:
        got = rows[rows.policy == policy].set_index("candle_ms").sort_index()
        mine = got[["p_up", "position", "wealth", "policy_params"]]
        mine = mine.add_suffix(f"_{policy}").add_prefix("j_")
        if out is None:
            out = got[["kind", "close", "model_sha256"]].add_prefix("j_").join(mine, how="outer")
        else:
            out = out.join(mine, how="outer")
    return out


def compare(journal: pd.DataFrame, backtest: pd.DataFrame, **context) -> Comparison:
    table = journal.join(backtest, how="outer")
    # p_up per policy in the journal (a hand edit touches one row); one p_up in the backtest
    for policy in POLICIES:
        table[f"b_p_up_{policy}"] = table["b_p_up"]
    c = Comparison(table=table, **context)
    c.differing = np.zeros(len(table), bool)
    for name in (*(f"p_up_{p}" for p in POLICIES), *QUANTITIES[1:]):
        c.differing |= ~close_enough(table, name)
    return c


def close_enough(table: pd.DataFrame, name: str) -> np.ndarray:
    """Per candle: both sides missing, or both there and within the tolerance."""
    j, b = table[f"j_{name}"].to_numpy(float), table[f"b_{name}"].to_numpy(float)
    tol = TOLERANCE * (np.abs(j) if name.startswith("wealth") else 1.0)
    if name == "close":
        tol = CLOSE_RTOL * np.abs(j)
    both = np.isfinite(j) & np.isfinite(b)
    return (np.isnan(j) & np.isnan(b)) | (both & (np.abs(np.where(both, j - b, 0.0)) <= tol))


def max_abs_diff(table: pd.DataFrame, name: str) -> float | None:
    if name == "p_up":
        diffs = [max_abs_diff(table, f"p_up_{p}") for p in POLICIES]
        diffs = [d for d in diffs if d is not None]
        return max(diffs) if diffs else None
    delta = (table[f"j_{name}"] - table[f"b_{name}"]).abs()
    if name.startswith("wealth"):
        delta = delta / table[f"j_{name}"].abs()  # relative: the journal's capital is any size
    return None if delta.isna().all() else float(delta.max())


def summary(c: Comparison) -> dict:
    table = c.table
    where = np.flatnonzero(c.differing)
    out = {
        "compared": len(table),
        "differing": len(where),
        "differing_candles": [iso(t) for t in table.index[where[:20]]],
        "max_abs_diff": {q: max_abs_diff(table, q) for q in QUANTITIES},
        "tolerance": TOLERANCE,
        "matches": len(where) == 0,
        "first": None,
    }
    if len(where):
        out["first"] = first_difference(c, int(where[0]))
    return out


def first_difference(c: Comparison, i: int) -> dict:
    row = c.table.iloc[i]
    sides = {}
    for side in ("journal", "backtest"):
        pre = side[0] + "_"
        sides[side] = {
            q: (None if pd.isna(row.get(pre + q)) else float(row[pre + q]))
            for q in (*(f"p_up_{p}" for p in POLICIES), *QUANTITIES[1:])
        }
    sides["journal"]["kind"] = None if pd.isna(row["j_kind"]) else row["j_kind"]
    reasons = [{"reason": name, "detail": detail} for name, check in REASONS
               if (detail := check(c, i)) is not None]  # fmt: skip
    if not reasons:
        reasons = [{"reason": "unexplained", "detail": "none of the known causes holds"}]
    return {"candle": iso(int(c.table.index[i])), **sides, "reasons": reasons}


def paper_diff(journal_path: str | Path, run_dir: str | Path, candles_from, model=None,
               predict=None, fee_bps: float | None = None) -> dict:  # fmt: skip
    """Compare the journal's rows of the run's market with the backtest of `candles_from`
    (callable (symbol, timeframe, since_ms, until_ms) -> candle frame). Predictions: the ONNX
    graph `model`, else RUN/export/model.onnx, else `predict` (the caller's torch model)."""
    from fc.core.evaluation.policies import params_by_policy
    from fc.core.evaluation.policy_grid import read_chosen
    from fc.core.studies.runs import read_config
    from fc.live.journal import open_journal
    from fc.live.model_file import model_sha256
    from fc.live.predictor import load_predictor

    config = read_config(run_dir)
    book = open_journal(journal_path, must_exist=True)
    try:
        everything = book.decisions()
    finally:
        book.close()
    if config.symbols:  # a universe's journal: every symbol and the portfolio
        from fc.live.universe_diff import universe_diff
        from fc.live.universe_model import load_universe_predictor

        predictor = load_universe_predictor(model or Path(run_dir) / "export" / "model.onnx")
        rows = everything[everything.timeframe == config.timeframe]
        found = universe_diff(rows, config, candles_from, predictor, fee_bps)
        return found | {"journal": str(journal_path), "run": str(run_dir),
                        "timeframe": config.timeframe, "symbol": ",".join(config.symbols),
                        "predictions": str(predictor.path)}  # fmt: skip
    rows = everything[
        (everything.symbol == config.symbol) & (everything.timeframe == config.timeframe)
    ]
    if len(rows) == 0:
        markets = everything[["symbol", "timeframe"]].drop_duplicates()
        held = ", ".join(f"{s} {t}" for s, t in markets.itertuples(index=False)) or "no rows"
        raise FcError(
            f"{journal_path}: holds {held}, the run {run_dir} is for {config.symbol} "
            f"{config.timeframe}; give the run whose model the journal traded"
        )
    model = model or (Path(run_dir) / "export" / "model.onnx")
    sha, predictions = "", "torch"
    # the parameters the backtest of this model uses: the graph's metadata, else what
    # `fc export` would put there (the run's grid choice, else the defaults)
    params, schedule = params_by_policy(read_chosen(run_dir)), config.schedule
    if Path(model).is_file():
        predictor = load_predictor(model, config.symbol, config.timeframe)
        predict, params = predictor.p_up_at, predictor.meta["policy_params"]
        schedule = predictor.meta["schedule"]
        sha, predictions = model_sha256(model), str(model)
    elif predict is None:
        raise FcError(f"{model}: no such model file; give --model FILE.onnx")
    tf = timeframe_ms(config.timeframe)
    first, last = int(rows.candle_ms.min()), int(rows.candle_ms.max())
    spec = None if plain_close(config.spec) else config.spec  # every symbol the run reads
    since = first - (config.first_decision + 1) * tf
    candles = {s: candles_from(s, config.timeframe, since, last + tf)
               for s in (spec.symbols if spec else [config.symbol])}  # fmt: skip
    journal = journal_table(rows)
    fee_journal = journal_fee_bps(rows)
    fee = fee_bps if fee_bps is not None else (fee_journal or 0.0)
    capital = {p: float(journal[f"j_wealth_{p}"].dropna().iloc[0]) for p in POLICIES}
    backtest = backtest_table(candles if spec else candles[config.symbol], predict,
                              config.seq_len, config.timeframe, first, last, fee, capital, params,
                              spec, schedule)  # fmt: skip
    c = compare(journal, backtest, seq_len=config.seq_len, model_sha256=sha, fee_bps=fee,
                fee_journal=fee_journal, predictions=predictions,
                policy_params=params)  # fmt: skip
    return {
        "journal": str(journal_path),
        "run": str(run_dir),
        "symbol": config.symbol,
        "timeframe": config.timeframe,
        "predictions": predictions,
        "model_sha256": sha,
        "journal_models": sorted(set(rows.model_sha256) - {""}),
        "fee_bps": fee,
        "fee_from": "--fee-bps" if fee_bps is not None else "journal",
        "capital": capital,
        "policy_params": {p: params[p].to_dict() for p in POLICIES},
        **summary(c),
    }


def candle_source(data, exchange_id: str = "binance", url: str | None = None, config=None):
    """Where the diff reads its candles: files, when --data is given (`data`: FILE, the decided
    symbol's, and/or SYMBOL=FILE values; a symbol the run reads that none names comes from the
    file it was trained on, as `fc backtest RUN --data` reads them), each resampled to the
    timeframe. Without --data (and without an --exchange-url naming an exchange), the run's own
    candle files where they cover the journal's candles, else the exchange through the live
    service's own module."""
    values = data_values(data)
    if values:
        from fc.live.replay import recorded_candles

        files = _data_files(values, config)
        return lambda symbol, timeframe, since_ms, until_ms: recorded_candles(
            files.get(symbol, files[None]), timeframe
        )

    own = _own_files(config) if config is not None and url is None else {}

    def fetch(symbol: str, timeframe: str, since_ms: int, until_ms: int) -> pd.DataFrame:
        from fc.live.exchange import Exchange
        from fc.live.replay import recorded_candles

        if symbol in own:
            candles = recorded_candles(own[symbol], timeframe)
            first, last = (int(candles.index[i].value // 1_000_000) for i in (0, -1))
            if first <= since_ms and last >= until_ms - timeframe_ms(timeframe):
                return candles  # the run's own file covers the journal: no exchange needed

        exchange = Exchange(exchange_id, url=url)
        return exchange.fetch_candles(symbol, timeframe, since_ms, until_ms=until_ms)

    return fetch


def _own_files(config) -> dict:
    """{symbol: the candle file the run was trained on} for every symbol it reads and whose file
    is still here."""
    files = config.trained_files
    return {s: Path(f) for s, f in files.items() if f and Path(f).is_file()}


def _data_files(values: list, config) -> dict:
    """{symbol: file} of --data values for the run (None: the plain FILE, for a caller
    without a run config, which reads one symbol)."""
    if config is None:
        return {None: Path(values[0])}
    if config.symbols:  # a universe: SYMBOL=FILE for some, the run's own files for the rest
        from fc.core.data.inputs import parse_data

        _, pairs = parse_data(values)
        return {None: None, **_own_files(config), **{s: Path(f) for s, f in pairs.items()}}
    from fc.core.studies.backtest_run import run_files

    plain, files = run_files(config, values)
    return {None: plain, config.symbol: plain, **files}
