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
