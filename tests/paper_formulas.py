"""The papers' formulas in plain Python (math only, loops, a bisection for the inverse normal):
an implementation independent of core.significance for the tests to check it against.

Bailey and Lopez de Prado (2012), PSR; (2014), the deflated Sharpe ratio."""

import math

EULER_MASCHERONI = 0.5772156649015329


def phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def phi_inverse(p: float) -> float:
    lo, hi = -12.0, 12.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if phi(mid) < p else (lo, mid)
    return (lo + hi) / 2


def sharpe_skew_kurtosis(returns) -> tuple[float, float, float]:
    """Per-bar Sharpe (sample sd), skewness and non-excess kurtosis (moment estimators)."""
    n = len(returns)
    mean = sum(returns) / n
    m2 = sum((x - mean) ** 2 for x in returns) / n
    m3 = sum((x - mean) ** 3 for x in returns) / n
    m4 = sum((x - mean) ** 4 for x in returns) / n
    sd = math.sqrt(m2 * n / (n - 1))
    return mean / sd, m3 / m2**1.5, m4 / m2**2


def psr(sharpe: float, skew: float, kurtosis: float, n: int, benchmark: float = 0.0) -> float:
    z = (sharpe - benchmark) * math.sqrt(n - 1)
    return phi(z / math.sqrt(1 - skew * sharpe + (kurtosis - 1) / 4 * sharpe**2))


def sr0(n_trials: int, variance: float) -> float:
    g = EULER_MASCHERONI
    return math.sqrt(variance) * (
        (1 - g) * phi_inverse(1 - 1 / n_trials) + g * phi_inverse(1 - 1 / (n_trials * math.e))
    )


def sample_variance(values) -> float:
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values) / (len(values) - 1)
