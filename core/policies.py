"""The two trading policies and the wealth formula (SPEC §2), in numpy for every caller."""

import numpy as np

POLICIES = ("discrete", "proportional")


def discrete_position(p_up: np.ndarray) -> np.ndarray:
    """All capital long when p_up >= 0.5, else all capital short."""
    return np.where(np.asarray(p_up) >= 0.5, 1.0, -1.0)


def proportional_position(p_up: np.ndarray) -> np.ndarray:
    """f = p_up - p_down = 2 p_up - 1, in [-1, 1]."""
    p_up = np.asarray(p_up, dtype=np.float64)
    return p_up - (1.0 - p_up)


def position(policy: str, p_up: np.ndarray) -> np.ndarray:
    if policy == "discrete":
        return discrete_position(p_up)
    if policy == "proportional":
        return proportional_position(p_up)
    raise ValueError(f"unknown policy {policy!r}")


def wealth_factors(positions: np.ndarray, returns: np.ndarray, cost: float = 0.0) -> np.ndarray:
    """Per-step growth 1 + f_t R_{t+1} - c |f_t - f_{t-1}| with f_{-1} = 0.

    positions[i] is decided at a close and earns returns[i] (the next candle's return)."""
    f = np.asarray(positions, dtype=np.float64)
    r = np.asarray(returns, dtype=np.float64)
    turnover = np.abs(np.diff(f, prepend=0.0))
    return 1.0 + f * r - cost * turnover


def wealth(positions: np.ndarray, returns: np.ndarray, cost: float = 0.0, start: float = 1.0):
    """W after each step: W_{t+1} = W_t (1 + f_t R_{t+1} - c |f_t - f_{t-1}|)."""
    return start * np.cumprod(wealth_factors(positions, returns, cost))
