"""Is a Sharpe ratio more than luck? The probabilistic Sharpe ratio of one strategy and the deflated
Sharpe ratio of the best of many, both on per-bar (not annualised) returns.

PSR (Bailey and Lopez de Prado, 2012, "The Sharpe ratio efficient frontier"):
    PSR(SR*) = Phi((SR - SR*) sqrt(n - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2))
with SR the per-bar Sharpe (mean over sample standard deviation, ddof 1, so SR sqrt(bars a year)
is the Sharpe the backtest reports), g3 the skewness and g4 the (non-excess) kurtosis of the
returns, both moment estimators (scipy.stats.skew/kurtosis(fisher=False) with bias=True).
DSR (Bailey and Lopez de Prado, 2014, "The deflated Sharpe ratio"): the PSR of the best trial
against SR0, the Sharpe the best of N trials with no skill is expected to reach:
    SR0 = sqrt(V[SR_n]) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e)))
gamma the Euler-Mascheroni constant, V[SR_n] the variance (ddof 1) of the N trials' Sharpes.
"""

import math
from statistics import NormalDist

import numpy as np

EULER_GAMMA = 0.5772156649015329
_NORMAL = NormalDist()


def moments(step_returns: np.ndarray) -> dict:
    """n, per-bar Sharpe, skewness and kurtosis (non-excess) of per-bar returns."""
    r = np.asarray(step_returns, dtype=np.float64)
    n = len(r)
    if n < 2:
        return {"n": n, "sharpe": float("nan"), "skewness": float("nan"), "kurtosis": float("nan")}
    centred = r - r.mean()
    m2 = float(np.mean(centred**2))
    sd = float(r.std(ddof=1))
    if m2 == 0.0:
        return {"n": n, "sharpe": float("nan"), "skewness": 0.0, "kurtosis": float("nan")}
    return {
        "n": n,
        "sharpe": float(r.mean() / sd),
        "skewness": float(np.mean(centred**3) / m2**1.5),
        "kurtosis": float(np.mean(centred**4) / m2**2),
    }


def psr_from_moments(
    sharpe: float, skewness: float, kurtosis: float, n: int, benchmark: float = 0.0
) -> float:
    """P(true per-bar Sharpe > benchmark) given the observed one over n bars; NaN when undefined
    (fewer than 2 bars, no dispersion)."""
    if n < 2 or not all(math.isfinite(v) for v in (sharpe, skewness, kurtosis, benchmark)):
        return float("nan")
    # >= 0 for any distribution (kurtosis >= 1 + skewness^2); > 0 unless degenerate
    spread = 1.0 - skewness * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if spread <= 0.0:
        return float("nan")
    return _NORMAL.cdf((sharpe - benchmark) * math.sqrt(n - 1) / math.sqrt(spread))


def psr(step_returns: np.ndarray, benchmark: float = 0.0) -> float:
    """PSR of per-bar returns against a per-bar Sharpe benchmark (0: "is it positive at all")."""
    m = moments(step_returns)
    return psr_from_moments(m["sharpe"], m["skewness"], m["kurtosis"], m["n"], benchmark)


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """SR0: the expected best per-bar Sharpe of n_trials skill-less trials whose Sharpes vary
    with sharpe_variance. One trial is no selection: 0."""
    if n_trials < 1:
        raise ValueError("n_trials must be >= 1")
    if n_trials == 1 or not sharpe_variance > 0:
        return 0.0
    z = (1 - EULER_GAMMA) * _NORMAL.inv_cdf(1 - 1 / n_trials)
    z += EULER_GAMMA * _NORMAL.inv_cdf(1 - 1 / (n_trials * math.e))
    return math.sqrt(sharpe_variance) * z


def deflated_sharpe(step_returns: np.ndarray, trial_sharpes) -> float:
    """DSR of the chosen strategy's per-bar returns, given the per-bar Sharpes of all N trials
    (the chosen one included)."""
    m = moments(step_returns)
    return deflated_from_moments(m, trial_sharpes)


def deflated_from_moments(best: dict, trial_sharpes) -> float:
    """DSR from the best trial's moments (as `moments` gives them) and all N trials' Sharpes;
    a trial without a Sharpe (no dispersion) still counts in N, not in the variance."""
    sharpes = [float(s) for s in trial_sharpes]
    return psr_from_moments(best["sharpe"], best["skewness"], best["kurtosis"], best["n"],
                            _sr0(sharpes))  # fmt: skip


def _sr0(sharpes: list[float]) -> float:
    finite = [s for s in sharpes if math.isfinite(s)]
    variance = float(np.var(finite, ddof=1)) if len(finite) > 1 else 0.0
    return expected_max_sharpe(max(1, len(sharpes)), variance)


def best_of(trials: dict[str, dict]) -> dict:
    """The trial with the highest per-bar Sharpe among `trials` ({name: moments}) and its DSR
    for N = len(trials); what every "best of N" line reports."""
    finite = {k: m for k, m in trials.items() if math.isfinite(m["sharpe"])}
    if not finite:
        return {"n_trials": len(trials), "best": None}
    name = max(finite, key=lambda k: finite[k]["sharpe"])
    best, sharpes = finite[name], [m["sharpe"] for m in trials.values()]
    return {
        "n_trials": len(trials),
        "best": name,
        "sharpe_per_bar": best["sharpe"],
        "psr": psr_from_moments(best["sharpe"], best["skewness"], best["kurtosis"], best["n"]),
        "expected_max_sharpe_per_bar": _sr0(sharpes),
        "dsr": deflated_from_moments(best, sharpes),
    }
