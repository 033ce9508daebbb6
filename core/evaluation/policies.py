"""The two trading policies, their cost-aware parameters and the wealth formula (SPEC §2, §9), in
numpy for every caller: the backtest, replay and the live service decide with these functions.

A policy maps p_up to a target position; PolicyParams make it path dependent, so positions are
decided one decision bar at a time by `next_position`, from the position held and the bars since
it last changed. `held_positions` runs that rule over a whole series (bars where no decision is
allowed, such as filled bars, carry the position held). The defaults are the workshop's policies
and take a vectorised path that gives the same positions bit for bit.
"""

import json
import math
from dataclasses import asdict, dataclass, fields, replace

import numpy as np

from fc.core.errors import FcError

POLICIES = ("discrete", "proportional")
# the parameters each policy reads; the others leave it unchanged (and are not gridded for it)
APPLIES = {
    "discrete": ("band", "flat_inside", "cap", "min_hold"),
    "proportional": ("rebalance", "cap", "min_hold"),
    # a universe's market-neutral book (core.evaluation.portfolio); not a per-symbol policy
    "long_short": ("band", "cap", "min_hold", "k"),
}


@dataclass(frozen=True)
class PolicyParams:
    """Cost-aware parameters of a policy. The defaults are the workshop's policies.

    band: discrete only. Long when p_up >= 0.5 + band, short when p_up <= 0.5 - band; inside the
      band keep the position held (or go flat with flat_inside). Band 0 is p_up >= 0.5 -> long,
      else short.
    rebalance: proportional only. Move to the target 2 p_up - 1 only when it differs from the
      position held by more than this; else keep the position held.
    cap: both. |position| <= cap (the discrete policy holds +-cap).
    min_hold: both, in bars (filled bars and downtime count: it is time). A position that changed
      at bar t may next change at a decision bar s with s - t >= min_hold. 1 (the default) lets
      it change at every bar; 4 keeps it at least 4 bars. The flat start is no held position.
    k: long_short only (a universe of symbols): long the k highest p_up, short the k lowest.
      Checked against the universe's size where it is known (portfolio.long_short).
    """

    band: float = 0.0
    flat_inside: bool = False
    rebalance: float = 0.0
    cap: float = 1.0
    min_hold: int = 1
    k: int = 1

    def __post_init__(self):
        for name in ("band", "rebalance", "cap", "min_hold", "k"):  # JSON read back may be anything
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise FcError(f"policy parameter {name} {value!r} is not a number")
        if not 0.0 <= self.band < 0.5:
            raise FcError(f"--band {self.band:g} must be in [0, 0.5), e.g. 0.02")
        if not self.rebalance >= 0.0 or not math.isfinite(self.rebalance):
            raise FcError(f"--rebalance {self.rebalance:g} must be >= 0, e.g. 0.1")
        if not 0.0 < self.cap <= 1.0:
            raise FcError(f"--cap {self.cap:g} must be in (0, 1], e.g. 0.5")
        if self.min_hold != int(self.min_hold) or self.min_hold < 1:
            raise FcError(
                f"--min-hold {self.min_hold:g} must be a whole number of bars >= 1 "
                "(1: the position may change at every bar)"
            )
        if self.k != int(self.k) or self.k < 1:
            raise FcError(f"--k {self.k:g} must be a whole number of symbols >= 1, e.g. 1")
        object.__setattr__(self, "min_hold", int(self.min_hold))
        object.__setattr__(self, "k", int(self.k))
        object.__setattr__(self, "flat_inside", bool(self.flat_inside))

    def is_default(self, policy: str) -> bool:
        """Whether `policy` decides as the workshop's policy (the parameters it reads)."""
        return self.for_policy(policy) == PolicyParams().for_policy(policy)

    def for_policy(self, policy: str) -> dict:
        """The parameters `policy` reads, as a dict."""
        return {k: getattr(self, k) for k in APPLIES[policy]}

    def to_dict(self) -> dict:
        """The fields as a dict; k only when it is not 1, so that a one-symbol run's JSON,
        graph metadata and journal rows stay as they were (k means nothing there)."""
        out = asdict(self)
        if out["k"] == 1:
            del out["k"]
        return out

    def label(self, policy: str) -> str:
        """The non-default parameters `policy` reads, short: "band 0.02 flat hold 4" (flat:
        flat inside the band)."""
        words = {"band": "band {:g}", "rebalance": "rebalance {:g}", "cap": "cap {:g}",
                 "min_hold": "hold {}", "k": "k {}"}  # fmt: skip
        default = PolicyParams()
        parts = []
        for key, value in self.for_policy(policy).items():
            if value == getattr(default, key):
                continue
            parts.append("flat" if key == "flat_inside" else words[key].format(value))
        return " ".join(parts) or "defaults"


NAMES = tuple(f.name for f in fields(PolicyParams))


def params_from(overrides: dict, base: "PolicyParams | None" = None) -> PolicyParams:
    """`base` (default: the defaults) with the fields given in overrides (None: not given)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = set(given) - set(NAMES)
    if unknown:
        raise FcError(f"unknown policy parameter(s) {', '.join(sorted(unknown))}")
    return replace(base or PolicyParams(), **given)


def params_by_policy(data: dict | None) -> dict[str, PolicyParams]:
    """{policy: PolicyParams} from {policy: {field: value}} (JSON); a missing policy: defaults."""
    data = data or {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise FcError("policy parameters must be a JSON object {policy: {parameter: value}}")
    return {p: params_from(data.get(p, {})) for p in POLICIES}


def with_overrides(params: dict | None, overrides: dict) -> dict[str, PolicyParams]:
    """{policy: PolicyParams}: `params` (absent policies: defaults) with each parameter given in
    overrides (None: not given) replaced for both policies."""
    params = params or {}
    return {p: params_from(overrides, params.get(p)) for p in POLICIES}


def params_json(params: dict[str, PolicyParams]) -> str:
    return json.dumps({p: params[p].to_dict() for p in POLICIES}, sort_keys=True)


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


def next_position(
    policy: str, p_up: float, held: float, bars_held: float, params: PolicyParams
) -> float:
    """The position decided at one decision bar: from p_up, the position held and the bars since
    it last changed (math.inf when nothing was held yet). The one rule of every caller."""
    if bars_held < params.min_hold:
        return held
    cap = params.cap
    if policy == "discrete":
        if p_up >= 0.5 + params.band:
            return cap
        if p_up <= 0.5 - params.band:
            return -cap
        return 0.0 if params.flat_inside else held
    if policy == "proportional":
        target = min(max(p_up - (1.0 - p_up), -cap), cap)
        return target if abs(target - held) > params.rebalance else held
    raise ValueError(f"unknown policy {policy!r}")


def hold(values: np.ndarray, decide: np.ndarray) -> np.ndarray:
    """values where decide is True, else the last decided value carried forward (0 before)."""
    last = np.where(decide, np.arange(len(decide)), -1)
    last = np.maximum.accumulate(last)
    return np.where(last >= 0, np.asarray(values, dtype=np.float64)[np.maximum(last, 0)], 0.0)


def held_positions(
    policy: str, p_up: np.ndarray, decide: np.ndarray, params: PolicyParams | None = None
) -> np.ndarray:
    """The position held at every bar: flat until the first decision bar, decided by
    next_position at each decision bar (`decide`), carried through the others."""
    params = params or PolicyParams()
    if params.is_default(policy):  # the workshop's memoryless policies: no pass needed
        return hold(position(policy, p_up), np.asarray(decide, dtype=bool))
    return sequential_positions(policy, p_up, decide, params)


def sequential_positions(
    policy: str, p_up: np.ndarray, decide: np.ndarray, params: PolicyParams
) -> np.ndarray:
    """held_positions by one pass over the decision bars, next_position at each: path-dependent
    parameters need it (about 0.1 s for 82k bars)."""
    decide = np.asarray(decide, dtype=bool)
    bars = np.flatnonzero(decide)
    decided = np.empty(len(bars))
    held, changed = 0.0, -math.inf  # flat, and no position held yet
    p = np.asarray(p_up, dtype=np.float64)[bars].tolist()
    for k, t in enumerate(bars.tolist()):
        f = next_position(policy, p[k], held, t - changed, params)
        if f != held:
            held, changed = f, t
        decided[k] = held
    values = np.zeros(len(decide))
    values[bars] = decided
    return hold(values, decide)


def wealth_factors(positions: np.ndarray, returns: np.ndarray, cost=0.0) -> np.ndarray:
    """Per-step growth 1 + f_t R_{t+1} - c |f_t - f_{t-1}| with f_{-1} = 0.

    positions[i] is decided at a close and earns returns[i] (the next candle's return). A
    portfolio's weights (bars, symbols) against its symbols' returns give the portfolio's
    growth 1 + sum_s w_{s,t} R_{s,t+1} - c sum_s |w_{s,t} - w_{s,t-1}|, one a bar.

    `cost` is a scalar c, or an array broadcasting against the positions: per symbol (S,)
    (core.evaluation.backtest.cost_vector: small coins cost more), the growth is then
    1 + sum_s w_s R_s - sum_s c_s |Δw_s|. A scalar takes the formula above, bit for bit."""
    f = np.asarray(positions, dtype=np.float64)
    r = np.asarray(returns, dtype=np.float64)
    if np.ndim(cost) > 0:
        return 1.0 + book_moves(f, r)[0] - traded_cost(f, cost)
    if f.ndim == 2:
        pnl, turnover = book_moves(f, r)
        return 1.0 + pnl - cost * turnover
    turnover = np.abs(np.diff(f, prepend=0.0))
    return 1.0 + f * r - cost * turnover


def traded_cost(positions: np.ndarray, cost) -> np.ndarray:
    """Per bar, what trading costs with a cost per symbol (or per bar and symbol):
    sum_s c_s |f_{s,t} - f_{s,t-1}| (from flat) of a (bars, symbols) matrix; c_t |Δf_t| of one
    position series (cost then broadcasts over the bars)."""
    f = np.asarray(positions, dtype=np.float64)
    c = np.asarray(cost, dtype=np.float64)
    if not np.all(c >= 0):  # NaN too
        raise FcError("a cost per unit traded must be >= 0")
    moves = c * np.abs(np.diff(f, axis=0, prepend=0.0))
    return moves.sum(axis=1) if f.ndim == 2 else moves


def book_moves(positions: np.ndarray, returns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per bar, the book's return before costs sum_s f_s R_s and its traded amount
    sum_s |f_{s,t} - f_{s,t-1}| (from flat), of one position series or a (bars, symbols)
    matrix; for one series, f R and |delta f| to the bit (a sum of one column is exact)."""
    f = np.asarray(positions, dtype=np.float64)
    r = np.asarray(returns, dtype=np.float64)
    if f.ndim == 1:
        f, r = f[:, None], r[:, None]
    return (f * r).sum(axis=1), np.abs(np.diff(f, axis=0, prepend=0.0)).sum(axis=1)


def wealth(positions: np.ndarray, returns: np.ndarray, cost=0.0, start: float = 1.0):
    """W after each step: W_{t+1} = W_t (1 + f_t R_{t+1} - c |f_t - f_{t-1}|); `cost` a scalar
    or per symbol, as in wealth_factors."""
    return start * np.cumprod(wealth_factors(positions, returns, cost))


def break_even_cost(positions: np.ndarray, returns: np.ndarray) -> float | None:
    """The cost c per unit of position change at which the final wealth is exactly 1.0:
    prod(1 + f R - c |Δf|) = 1, with f starting flat. None when the positions never change (the
    cost cannot matter) or the wealth is <= 1.0 already without costs (no cost >= 0 breaks even).
    A portfolio's weights (bars, symbols): prod(1 + sum_s w R - c sum_s |Δw|) = 1.

    Log wealth g(c) = sum log(a - c b) is decreasing and concave in c, so Newton's steps, kept
    inside the bracket [g > 0, g <= 0] by bisection when they leave it, converge in a few
    iterations."""
    pnl, traded = book_moves(positions, returns)
    gross = 1.0 + pnl
    moves = traded > 0
    if not moves.any() or np.any(gross <= 0):
        return None
    still = float(np.sum(np.log(gross[~moves])))  # the bars without a trade do not depend on c
    a, b = gross[moves], traded[moves]
    if still + float(np.sum(np.log(a))) <= 0.0:
        return None
    lo, hi = 0.0, float(np.min(a / b))  # at hi a step's factor reaches 0: ruin
    c = 0.0
    for _ in range(200):
        left = a - c * b
        g = still + float(np.sum(np.log(left)))
        if g > 0.0:
            lo = c
        else:
            hi = c
        newton = c + g / float(np.sum(b / left))  # c - g / g'
        following = newton if lo < newton < hi else 0.5 * (lo + hi)
        if abs(following - c) <= 1e-15 * max(c, 1e-300) or not lo < following < hi:
            break
        c = following
    return c
