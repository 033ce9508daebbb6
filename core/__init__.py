"""The research core: candles, features, model, training, backtest. No CLI, exchange or runtime."""
