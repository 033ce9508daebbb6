"""fc: forecast the next crypto candle with a GRU, backtest it honestly, paper-trade it live."""

import os

# torch's OpenMP threads spin while they wait: on a small machine where another process holds a
# core, a batched GRU then runs 20x slower (6000 windows: 162 s against 7 s passive). Set before
# torch loads; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
