"""The candles a training command's options name, on their grid with the feature columns, and
the base TrainConfig naming them: one definition for the CLI's options (cli.train_options.Given)
and for a lab's units, which load their variant's inputs inside a worker."""

from fc.core.data.feature_set import parse_features
from fc.core.data.inputs import parse_data, symbol_grids, with_features
from fc.core.learning.config import TrainConfig


def load_features(data: dict, fields: dict, texts: list[str]):
    """({features text: grid with its columns}, base TrainConfig) for several feature specs
    (fc tune's alternatives), the config's inputs covering every symbol any of them reads.
    `data`: the DATA options (symbol, data, timeframe, store, ...); `fields`: TrainConfig fields."""
    symbol, timeframe = data["symbol"], data["timeframe"]
    plain, pairs = parse_data(data["data"])
    grids, sources = {}, {}
    for text in texts:
        spec = parse_features(text, symbol)
        candles, found = symbol_grids(spec, timeframe, plain, pairs, data["store"])
        grids[text] = with_features(spec, candles, timeframe)
        sources |= found
    source, digest = sources[symbol]
    inputs = {s: list(v) for s, v in sources.items() if s != symbol}
    config = TrainConfig(symbol=symbol, timeframe=timeframe, data=source, data_sha256=digest,
                         inputs=inputs, **fields)  # fmt: skip
    return grids, config


def pooled(data: dict, fields: dict) -> bool:
    """Whether the options name a pooled universe (fc walk --symbols A,B,… or --target relative):
    one definition for fc walk and a lab's variants."""
    from fc.core.data.universe import parse_symbols

    return len(parse_symbols(data.get("symbols"))) > 1 or fields.get("target") == "relative"


def load_universe(data: dict, fields: dict, features: str | None = None):
    """({symbol: grid with its columns, on one index}, base TrainConfig naming every symbol):
    the candles of --symbols from --data SYMBOL=FILE or the store, the target and the pooled
    options checked first; `features` where `fields` do not carry them (fc tune's fixed
    --features). The one loading of a universe for fc train, walk, tune and a lab's units."""
    from dataclasses import replace

    from fc.core.data.universe import parse_symbols, universe_grids
    from fc.core.errors import FcError
    from fc.core.learning.pooled import check_universe
    from fc.core.learning.training import check_target, resolve_device

    symbols = parse_symbols(data.get("symbols"))
    base = TrainConfig(symbol=data["symbol"], timeframe=data["timeframe"], **fields)
    base = replace(base, symbol=symbols[0] if symbols else base.symbol, symbols=symbols)
    base = replace(base, features=features) if features else base
    check_target(base)
    check_universe(base)
    resolve_device(base.device)
    plain, pairs = parse_data(data["data"])
    if plain is not None:
        raise FcError(f"--data {plain}: with --symbols give each symbol's file as SYMBOL=FILE")
    grids, sources = universe_grids(base.features, symbols, data["timeframe"], pairs,
                                    data["store"])  # fmt: skip
    source, digest = sources[symbols[0]]
    inputs = {s: list(v) for s, v in sources.items() if s != symbols[0]}
    return grids, replace(base, data=source, data_sha256=digest, inputs=inputs)
