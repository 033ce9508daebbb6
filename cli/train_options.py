"""The options of every command that trains (fc train, walk, sweep, tune), defined once.

DATA says where the candles are and where runs go; TRAINING maps one option to one field of
core.learning.config.TrainConfig. A command takes them with @trains(...): its own parameters
stay in its signature, the shared ones are added to it (typer reads the signature), and the
command receives them gathered in one `given: Given`. A new training option is one line in
TRAINING (and its field in TrainConfig); fc tune reads TrainConfig's fields directly, so it
takes the new option as a fixed value or a search range with no further line.
"""

import functools
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

TEST_FROM_HELP = (
    "Test range from this date, never read by training or selection; default: 2025-01-01 when"
    " validation and test each keep >= 20 % of the decisions after the split, else the last"
    " 20 %; none: no test range."
)


@dataclass(frozen=True)
class Option:
    name: str  # the parameter's name: --name-with-dashes on the command line
    type: Any
    default: Any
    help: str
    envvar: str | None = None


DATA = (
    Option("symbol", str, "BTC/USDT", "Symbol in the store (without --data)."),
    Option(
        "data",
        list[str] | None,
        None,
        "A candle file (parquet, csv, feather, json) of --symbol; SYMBOL=FILE (repeatable) for a"
        " symbol the features read.",
    ),
    Option(
        "symbols",
        str,
        "",
        "Several symbols, comma-separated (fc train): one model pooled over all of them, each"
        " from the store or --data SYMBOL=FILE.",
    ),
    Option("timeframe", str, "30m", "Resample the candles to this timeframe."),
    Option("store", Path, Path("data"), "Candle store (with --symbol).", "FC_STORE"),
    Option("runs", Path, Path("runs"), "Folder for run folders."),
    Option("threads", int, 1, "Torch CPU threads; 0: torch's default (a small GRU gains little)."),
)

TRAINING = (
    Option("family", str, "gru", "Model family: gru, lightgbm or logistic."),
    Option(
        "features",
        str,
        "close",
        "Inputs, name[:N][@SYMBOL] comma-separated: close, ret, range, body, wicks, volume:48,"
        " volatility:48, time; ret@ETH/USDT reads another symbol.",
    ),
    Option("loss", str, "ce", "ce (direction) or profit (end-to-end log growth)."),
    Option(
        "target",
        str,
        "next",
        "next (the symbol's next candle) or relative (its next return against the equal-weight"
        " mean of --symbols).",
    ),
    Option(
        "horizon",
        int,
        1,
        "Candles ahead the label reads: the sign of close[t+H]/close[t]-1 (or against the"
        " universe's mean with --target relative); ranges are purged by H.",
    ),
    Option(
        "cadence",
        int | None,
        None,
        "Re-decide the book every N candles (open time a multiple of N since the epoch), hold"
        " between; default: the horizon.",
    ),
    Option("sleeves", int | None, None, "N overlapping sub-books, one re-decided each candle."),
    Option("hidden", int, 16, "GRU hidden size."),
    Option("layers", int, 3, "GRU layers."),
    Option("seq_len", int, 512, "Window length: features a prediction reads."),
    Option("epochs", int, 7, "Passes over the training decisions."),
    Option("batch_size", int, 0, "Rows per step: windows (window) or chunks (sequence); 0: 64/32."),
    Option("lr", float, 0.0, "Learning rate; 0: 1e-3 window, 3e-2 sequence, 0.05 lightgbm."),
    Option("split", str, "2024-01-01", "Train before this date, validate from it."),
    Option("test_from", str, "", TEST_FROM_HELP),
    Option("device", str, "auto", "auto, cpu or cuda."),
    Option("seed", int, 0, "Seed: CPU runs with the same seed are identical."),
    Option("seeds", int, 1, "Ensemble members, seeds seed..seed+N-1, probabilities averaged."),
    Option("calibrate", str, "none", "none, or temperature: one T fitted on validation log loss."),
    Option("scheme", str, "sequence", "sequence (default, fast) or window (workshop)."),
    Option("chunk", int, 512, "Sequence scheme: scored steps per chunk."),
    Option("cost_bps", float, 0.0, "Profit loss: cost per unit of position change, bps."),
    Option("scaling", str, "std", "std (center 1, train std) or none (raw)."),
    Option("max_steps", int, 0, "Stop after this many steps (0: all epochs)."),
    Option("val_size", int, 2048, "Validation decisions scored while training (0: all)."),
    Option("lags", int, 16, "lightgbm, logistic: the last N values of each feature a row holds."),
    Option("num_leaves", int, 15, "lightgbm: leaves a tree."),
    Option("min_data_in_leaf", int, 200, "lightgbm: training rows a leaf at least."),
)


@dataclass(frozen=True)
class Given:
    """The shared options a training command was given."""

    data: dict  # symbol, data, timeframe, store, runs, threads
    fields: dict  # TrainConfig fields

    def load(self, threads: bool = True):
        """(grid, base TrainConfig): the candles on their grid and the config naming them. The
        device is checked first (a missing CUDA is one line before any work), then the family
        and its options, and torch is set to --threads (unless threads=False: fc tune sets them
        once its study is open)."""
        from fc.core.learning.family import family_of
        from fc.core.learning.training import resolve_device

        if "device" in self.fields:
            resolve_device(self.fields["device"])
        # an unknown family, or an option that means nothing to it, before the candles are read
        asked = self.load_base()
        family_of(asked).check(asked)
        from fc.core.errors import FcError

        self._threads(threads)
        if len(self.symbols()) > 1:
            raise FcError("--symbols: this command trains one symbol yet; pool with fc train")
        grids, config = self.load_features([self.fields.get("features", "close")])
        return next(iter(grids.values())), config

    def _threads(self, threads: bool) -> None:
        if threads and self.data["threads"] > 0:
            import torch

            torch.set_num_threads(self.data["threads"])

    def symbols(self) -> tuple:
        """--symbols as given (empty: one symbol, --symbol)."""
        from fc.core.data.universe import parse_symbols

        return parse_symbols(self.data.get("symbols"))

    def load_universe(self, features: str | None = None):
        """({symbol: grid with its columns, on one index}, base TrainConfig naming every
        symbol): core.studies.inputs.load_universe, torch set to --threads."""
        from fc.core.studies.inputs import load_universe

        self._threads(True)
        return load_universe(self.data, self.fields, features)

    def load_base(self):
        """The TrainConfig of the given fields alone, no candles read."""
        from fc.core.learning.config import TrainConfig

        return TrainConfig(symbol=self.data["symbol"], timeframe=self.data["timeframe"],
                           **self.fields)  # fmt: skip

    def load_features(self, texts: list[str]):
        """({features text: grid with its columns}, base TrainConfig) for several feature specs
        (fc tune's alternatives): core.studies.inputs.load_features."""
        from fc.core.studies.inputs import load_features

        return load_features(self.data, self.fields, texts)


CONTEXT = "fc_context"


def _without_unused(values: dict, ctx) -> dict:
    """The training options with those the chosen family does not use and the user did not
    give put back to TrainConfig's defaults: a command's own default (fc walk's 4 epochs) must
    not read as an option given to a family without epochs. Given ones stay, to be refused."""
    from fc.core.learning.config import TrainConfig
    from fc.core.learning.family import family_of

    if "family" not in values:
        return values
    try:
        unused = family_of(values["family"]).unused
    except Exception:  # an unknown family: Given.load says so in one line
        return values
    defaults = TrainConfig()

    def given(name: str) -> bool:
        source = ctx.get_parameter_source(name)
        return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")

    return {
        name: value if name not in unused or given(name) else getattr(defaults, name)
        for name, value in values.items()
    }


def _parameter(option: Option, default) -> inspect.Parameter:
    flag = typer.Option(help=option.help, envvar=option.envvar)
    return inspect.Parameter(
        option.name,
        inspect.Parameter.KEYWORD_ONLY,
        default=default,
        annotation=Annotated[option.type, flag],
    )


def trains(*, training: bool = True, skip: tuple = (), defaults: dict | None = None):
    """Decorator: add DATA (and TRAINING, unless training=False) to a command's options, minus
    `skip` and those the command defines itself, with `defaults` replacing the shared ones;
    the command receives them as `given`."""
    defaults = defaults or {}

    def decorate(command):
        own = inspect.signature(command)
        mine = [p for p in own.parameters.values() if p.name != "given"]
        taken = {p.name for p in mine} | set(skip)
        data = [o for o in DATA if o.name not in taken]
        fields = [o for o in (TRAINING if training else ()) if o.name not in taken]
        added = [_parameter(o, defaults.get(o.name, o.default)) for o in (*data, *fields)]

        @functools.wraps(command)
        def run(**kwargs):
            ctx = kwargs.pop(CONTEXT) if own_ctx is None else kwargs[own_ctx]
            shared = {o.name: kwargs.pop(o.name) for o in data}
            shared = {o.name: defaults.get(o.name, o.default) for o in DATA} | shared
            values = {o.name: kwargs.pop(o.name) for o in fields}
            return command(**kwargs, given=Given(shared, _without_unused(values, ctx)))

        own_ctx = next((p.name for p in mine if p.annotation is typer.Context), None)
        if own_ctx is None:  # typer hands the click context to a parameter of this type
            added.append(inspect.Parameter(CONTEXT, inspect.Parameter.KEYWORD_ONLY,
                                           annotation=typer.Context))  # fmt: skip
        params = mine + added
        run.__signature__ = own.replace(parameters=params)
        run.__annotations__ = {p.name: p.annotation for p in params}
        return run

    return decorate
