"""`fc tune`: an Optuna study of training runs. The search space comes from options (`--hidden
8,16,32` a list, `--lr 1e-3:1e-1` a range, `--epochs 2` a fixed value), the study from a URL
(one SQLite file, or PostgreSQL that several workers share), and each trial is one call of
core.training.train whose validations feed the pruner: no second training loop. Where the
study is stored and how it is opened: core/studies/tune_study.py."""

import json
import math
from dataclasses import dataclass, fields, replace
from pathlib import Path

from fc.core.errors import FcError
from fc.core.evaluation.policies import NAMES, PolicyParams
from fc.core.learning.config import TrainConfig
from fc.core.studies.policy_objective import OBJECTIVE as POLICY_OBJECTIVE
from fc.core.studies.policy_objective import PolicyTarget, score_trial, split_policy

# One line per searchable parameter: how a `low:high` range of it is sampled ("log" or
# "linear"; "list" takes only a comma list). The value type is the TrainConfig or PolicyParams
# field's. A name that is no such field in this build is left out. The policy parameters
# (band .. min_hold) change only the objective val-policy-log-growth
# (core/studies/policy_objective.py).
SEARCHABLE = {
    "hidden": "log",
    "layers": "linear",
    "lr": "log",
    "seq_len": "log",
    "chunk": "log",
    "batch_size": "log",
    "loss": "list",
    "family": "list",
    "cost_bps": "linear",
    "seeds": "linear",
    "band": "linear",
    "flat_inside": "list",
    "rebalance": "linear",
    "cap": "linear",
    "min_hold": "log",
}
# TrainConfig fields that a run computes or records itself: not options
COMPUTED = {"data", "data_sha256", "scale_center", "scale_scale", "feature", "classes",
            "train_range", "validation_range", "test_range", "temperature", "fc_version",
            "extra"}  # fmt: skip
# objective -> (direction, key of the validation result: training's on_validation and metrics;
# None: the policy objective, scored after training by core.policy_objective)
OBJECTIVES = {"val-ce": ("minimize", "ce"), "val-log-growth": ("maximize", "log_growth"),
              POLICY_OBJECTIVE: ("maximize", None)}  # fmt: skip


def _defaults() -> dict:
    train = {f.name: f.default for f in fields(TrainConfig) if f.name not in COMPUTED}
    return train | {f.name: f.default for f in fields(PolicyParams)}


def searchable() -> list[str]:
    return [name for name in SEARCHABLE if name in _defaults()]


@dataclass(frozen=True)
class Dimension:
    """One searched parameter: a list of choices, or a low..high range."""

    name: str
    choices: tuple = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    integer: bool = False

    def suggest(self, trial):
        if self.choices:
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)

    def extremes(self) -> list:
        """The values to check before the study starts: every choice, or both ends."""
        return list(self.choices) or [self.low, self.high]


def option_values(args: list[str]) -> dict[str, str]:
    """['--hidden', '8,16', '--lr=1e-3:1e-1'] -> {'hidden': '8,16', 'lr': '1e-3:1e-1'}.
    --features may be given several times (a spec has commas of its own): each is one
    alternative, kept as a tuple of texts."""
    values, i = {}, 0
    while i < len(args):
        token = args[i]
        if not token.startswith("--") or len(token) < 3:
            raise FcError(f"{token!r}: expected an option like --hidden 8,16,32")
        name, _, value = token[2:].partition("=")
        if not value:
            if i + 1 >= len(args):
                raise FcError(f"--{name} needs a value")
            i, value = i + 1, args[i + 1]
        key = name.replace("-", "_")
        if key not in _defaults():
            known = ", ".join("--" + n.replace("_", "-") for n in searchable())
            raise FcError(f"--{name}: unknown parameter; search {known} or fix any fc train option")
        if key == "features" and key in values:
            before = values[key] if isinstance(values[key], tuple) else (values[key],)
            value = tuple(dict.fromkeys((*before, value)))
        values[key] = value  # given twice, the last one counts, as for every click option
        i += 1
    return values


def _typed(name: str, text: str):
    default = _defaults()[name]
    kind = int if default is None else type(default)  # --cadence, --sleeves: None = not given
    try:
        if kind is bool:
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return text.lower() in ("true", "1")
        return kind(text) if kind in (int, float, str) else _not_settable(name)
    except ValueError:
        raise FcError(f"--{_flag(name)} {text!r}: not a {kind.__name__}") from None


def _not_settable(name: str):
    raise FcError(f"--{_flag(name)} cannot be set from fc tune")


def _flag(name: str) -> str:
    return name.replace("_", "-")


def search_space(values: dict[str, str]) -> tuple[dict, list[Dimension]]:
    """(fixed TrainConfig values, searched dimensions) from option texts: `a,b,c` is a list,
    `low:high` a range (sampled as SEARCHABLE says), anything else a fixed value."""
    fixed, space = {}, []
    for name, text in values.items():
        if isinstance(text, tuple):  # --features given several times: a categorical
            space.append(Dimension(name, choices=text))
            continue
        how = SEARCHABLE.get(name) if name in searchable() else None
        if how and "," in text:
            items = [v.strip() for v in text.split(",")]
            if not any(items) or "" in items:
                raise FcError(f"--{_flag(name)} {text!r}: an empty list or item; give 8,16,32")
            choices = tuple(dict.fromkeys(_typed(name, v) for v in items))
            if len(choices) == 1:
                fixed[name] = choices[0]
            else:
                space.append(Dimension(name, choices=choices))
        elif how and ":" in text:
            space_or_fixed = _range(name, text, how)
            if isinstance(space_or_fixed, Dimension):
                space.append(space_or_fixed)
            else:
                fixed[name] = space_or_fixed
        else:
            fixed[name] = _typed(name, text)
    return fixed, space


def _range(name: str, text: str, how: str):
    if how == "list":
        raise FcError(f"--{_flag(name)} {text!r}: give a list like ce,profit, not a range")
    parts = text.split(":")
    if len(parts) != 2:
        raise FcError(f"--{_flag(name)} {text!r}: a range is low:high, like 1e-3:1e-1")
    low, high = (_typed(name, p.strip()) for p in parts)
    if low > high:
        raise FcError(f"--{_flag(name)} {text!r}: an empty range (low above high)")
    if low == high:
        return low
    if how == "log" and low <= 0:
        raise FcError(f"--{_flag(name)} {text!r}: a log-uniform range must start above 0")
    is_int = isinstance(low, int)
    return Dimension(name, low=low, high=high, log=how == "log", integer=is_int)


def check_objective(objective: str) -> None:
    if objective not in OBJECTIVES:
        raise FcError(f"--objective {objective!r}: use {', '.join(OBJECTIVES)}")


def check_study_input(
    base: TrainConfig, space: list[Dimension], objective: str, grid, target=None
) -> None:
    """Every refusal before the study is opened, so a bad call leaves the stored study as it
    was: the objective, and the base config (and the policy objective's target) with each
    dimension at each of its extremes."""
    from fc.core.learning.ensemble import check_ensemble_options
    from fc.core.learning.family import family_of
    from fc.core.learning.training import check_config

    check_objective(objective)
    if objective == "val-log-growth" and any(d.name == "cost_bps" for d in space):
        raise FcError(
            "--cost-bps is searched: val-log-growth would be measured at each trial's own cost; "
            "fix --cost-bps or use --objective val-ce"
        )
    if target is None and objective == POLICY_OBJECTIVE:  # every policy parameter default
        target = PolicyTarget()
    policy = [d for d in space if d.name in NAMES]
    if policy and target is None:
        raise FcError(f"--{_flag(policy[0].name)} does not change {objective}; use "
                      f"--objective {POLICY_OBJECTIVE}")  # fmt: skip
    train = [d for d in space if d not in policy]
    for config in [base, *(replace(base, **{d.name: v}) for d in train for v in d.extremes())]:
        config = for_family(config)
        family_of(config).check(config)
        if len(config.symbols) > 1 and target is not None:
            raise FcError(f"--objective {POLICY_OBJECTIVE} scores one symbol's policy; with "
                          "--symbols use val-ce or val-log-growth")  # fmt: skip
        if len(config.symbols) > 1:  # a universe: the pooled run's own checks
            from fc.core.learning.pooled import check_universe
            from fc.core.learning.training import check_target

            check_target(config)
            check_universe(config)
            continue
        check_config(config, grid_for(grid, config))
        check_ensemble_options(config)
    for d in policy:
        for value in d.extremes():  # PolicyParams refuses a band of 0.5, a hold of 0, ...
            replace(target.params, **{d.name: value})


def grid_for(grid, config: TrainConfig):
    """The grid with the config's feature columns: `grid` itself, or its entry for the config's
    features when fc tune searches several feature specs ({features text: grid})."""
    if isinstance(grid, dict) and config.features in grid:
        return grid[config.features]
    return grid  # one grid, or a universe's {symbol: grid}


def feature_alternatives(base: TrainConfig, space: list) -> list[str]:
    """Every --features text a study's trials may train on (one, or a categorical's choices)."""
    for dim in space:
        if dim.name == "features":
            return list(dim.choices)
    return [base.features]


def for_family(config: TrainConfig) -> TrainConfig:
    """The config with the options its family does not use back at their defaults: with
    --family searched, a fixed --hidden 8 shapes the GRU trials and is no option of LightGBM's."""
    from fc.core.learning.family import family_of

    defaults = TrainConfig()
    unused = family_of(config).unused
    return replace(config, **{name: getattr(defaults, name) for name in unused})


def suggest(trial, base: TrainConfig, space: list) -> dict:
    """The trial's values: the family first (when searched), then only the dimensions that
    family uses (a conditional space: LightGBM trials draw no --hidden, GRU trials no
    --num-leaves)."""
    from fc.core.learning.family import family_of

    values = {}
    for dim in sorted(space, key=lambda d: d.name != "family"):
        family = values.get("family", base.family)
        if dim.name != "family" and dim.name in family_of(family).unused:
            continue
        values[dim.name] = dim.suggest(trial)
    return values


def run_trial(trial, base: TrainConfig, space, grid, runs, objective: str, target=None) -> float:
    """One trial: suggest, train (reporting each validation to the pruner), record the run; for
    the policy objective, train unpruned, then score the policy with the trial's parameters."""
    import optuna

    from fc.core.studies.train import train_ensemble

    chosen, policy = split_policy(suggest(trial, base, space))
    config = for_family(replace(base, **chosen))
    key = OBJECTIVES[objective][1]
    if key is None and target is None:  # the policy objective with every parameter default
        target = PolicyTarget()
    progress = {"step": 0, "total": 0, "validations": 0}

    def on_progress(step, total, train_loss, val_loss):
        progress.update(step=step, total=total)

    def on_validation(_, result: dict) -> None:
        # counted here, not by train(): an ensemble's members go on numbering where the last
        # stopped, so trials with the same --seeds compare at the same step
        progress["validations"] += 1
        k = progress["validations"]
        value = float(result[key])
        trial.report(value if math.isfinite(value) else math.nan, k)
        if trial.should_prune():
            trial.set_user_attr("pruned_at_validation", k)
            trial.set_user_attr("pruned_at_step", progress["step"] + 1)  # not yet reported
            trial.set_user_attr("total_steps", progress["total"])
            raise optuna.TrialPruned(f"validation {k}: {key} {value:.5g}")

    # the policy objective is known only once training is done: nothing to prune on (docs/search.md)
    hooks = {"on_validation": on_validation} if key else {}
    grid = grid_for(grid, config)
    run_dir = train_ensemble(config, grid, runs, on_progress, **hooks)
    trial.set_user_attr("run_dir", str(run_dir))
    if target is not None:
        params = replace(target.params, **policy)
        trial.set_user_attr("policy_params", params.for_policy(target.policy))
        return score_trial(run_dir, grid, target, params, trial)
    metrics = json.loads((Path(run_dir) / "metrics.json").read_text())
    return float(metrics["validation"][key])


def tune(
    study, base: TrainConfig, space, grid, runs, objective: str, n_trials, timeout, on_trial,
    target=None,
):  # fmt: skip
    """Run trials of `study` in this process until `n_trials` (None: no limit) have run or
    `timeout` seconds (None: none) have passed; on_trial(frozen trial) after each."""
    study.optimize(
        lambda trial: run_trial(trial, base, space, grid, runs, objective, target),
        n_trials=n_trials, timeout=timeout, callbacks=[lambda _, trial: on_trial(trial)],
    )  # fmt: skip
    return study
