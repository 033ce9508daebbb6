"""The cost and universe options of the commands that backtest (`fc backtest`, `fc walk`):
--fee-bps (a default and SYMBOL=BPS per symbol), --slippage-bps and --top, read into one
core.evaluation.backtest.BacktestConfig."""

import math
from typing import Annotated

import typer

FeeBps = Annotated[
    list[str] | None,
    typer.Option(
        metavar="BPS|SYMBOL=BPS",
        help="Fee per unit traded, basis points (default 0); SYMBOL=BPS (repeatable) charges one"
        " symbol of a universe another fee, e.g. --fee-bps 5 --fee-bps PEPE/USDT=15.",
    ),
]
Top = Annotated[
    int | None,
    typer.Option(
        metavar="N",
        help="Universe: at each decision candle keep only the N eligible symbols with the"
        " largest trailing 30-day quote volume (point in time), N >= 1.",
    ),
]


def parse_fees(values: list[str] | None) -> tuple[float, dict[str, float]]:
    """(default fee, {symbol: fee}) in bps from --fee-bps values: a plain number is the default
    (at most one; 0 when none), SYMBOL=BPS a symbol's own fee (each symbol once)."""
    from fc.core.data.universe_file import SYMBOL
    from fc.core.errors import FcError

    default, fees = None, {}
    for value in values or []:
        symbol, sep, text = str(value).rpartition("=")
        what = f"{symbol}=BPS" if sep else "BPS"
        if sep and not SYMBOL.fullmatch(symbol):
            raise FcError(f"--fee-bps {value!r}: give SYMBOL=BPS with a ccxt symbol, e.g. "
                          "PEPE/USDT=15")  # fmt: skip
        bps = _bps(value, what)
        if not sep:
            if default is not None:
                raise FcError(f"--fee-bps {default:g} and {value}: give one default fee, and "
                              "SYMBOL=BPS for the symbols that pay another")  # fmt: skip
            default = bps
        elif symbol in fees:
            raise FcError(f"--fee-bps names {symbol} twice; give each symbol's fee once")
        else:
            fees[symbol] = bps
    return (0.0 if default is None else default), fees


def _bps(value: str, what: str) -> float:
    from fc.core.errors import FcError

    try:
        bps = float(str(value).rpartition("=")[2])
    except ValueError:
        bps = math.nan
    if not (math.isfinite(bps) and bps >= 0):
        raise FcError(f"--fee-bps {value!r}: give {what} with a fee in bps >= 0, e.g. 5")
    return bps


def backtest_config(fee_bps: list[str] | None, slippage_bps: float, top: int | None = None,
                    **fields):  # fmt: skip
    """The BacktestConfig of the options (fields: start, end, …)."""
    from fc.core.evaluation.backtest import BacktestConfig

    default, fees = parse_fees(fee_bps)
    return BacktestConfig(fee_bps=default, slippage_bps=slippage_bps, symbol_fees=fees, top=top,
                          **fields)  # fmt: skip
