"""fc: forecast the next crypto candle with a GRU, backtest it honestly, paper-trade it live."""

__version__ = "0.1.0"
