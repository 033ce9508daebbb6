"""Where an fc tune study lives and how it is opened: the storage (a SQLite file by default,
PostgreSQL for workers on several machines), the study (created, or resumed when it optimises
the same objective) and its pruner."""

import time
import warnings
from pathlib import Path

from fc.core.errors import FcError
from fc.core.studies.policy_objective import OBJECTIVE as POLICY_OBJECTIVE
from fc.core.studies.tune import OBJECTIVES


def storage_url(storage: str, runs: str | Path) -> str:
    """--storage, or the default SQLite file tune.sqlite3 in the runs folder (made if absent)."""
    if storage:
        return storage
    Path(runs).mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{Path(runs) / 'tune.sqlite3'}"


def _shown(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 (an unparsable URL: say so without echoing it whole)
        return url.split("@")[-1]


def open_storage(url: str):
    """Optuna's RDB storage at `url`; FcError (one line) when it cannot be opened. A heartbeat
    lets another worker mark a trial failed when the machine running it died."""
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    if not url.startswith(("sqlite:///", "postgresql://", "postgresql+")):
        raise FcError(
            f"--storage {_shown(url)!r}: give sqlite:///FILE or postgresql://USER@HOST/DB"
        )
    # sqlite: wait for another worker's write lock instead of failing at once
    engine, shown = {"connect_args": {"timeout": 60}}, _shown(url)
    if url.startswith("postgresql"):
        # the psycopg (3) driver the tune extra installs, whatever SQLAlchemy's default is
        url = url.replace("postgresql://", "postgresql+psycopg://", 1)
        engine = {"connect_args": {"connect_timeout": 10}}
    for attempt in range(5):
        try:
            with warnings.catch_warnings():  # the heartbeat is experimental: no warning a call
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                # a trial whose worker died is marked failed and enqueued again, 3 times at most
                # (the callback's name since Optuna 4.9; the older one before)
                retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback",
                                optuna.storages.RetryFailedTrialCallback)(max_retry=3)  # fmt: skip
                return optuna.storages.RDBStorage(
                    url, engine_kwargs=engine, heartbeat_interval=60, grace_period=180,
                    heartbeat_stale_trial_callback=retry,
                )  # fmt: skip
        except (SQLAlchemyError, ImportError, ValueError, OSError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            if not _creation_race(exc):
                raise FcError(f"--storage {shown}: cannot open it ({first})") from None
            time.sleep(0.2 * (attempt + 1))
    raise FcError(f"--storage {shown}: cannot create the study tables (other workers racing?)")


def _creation_race(exc: Exception) -> bool:
    """Workers started together on a new database race to create its tables; the loser sees
    one of these and finds the tables made on its next try."""
    from sqlalchemy.exc import IntegrityError

    text = str(exc)
    return isinstance(exc, IntegrityError) or "already exists" in text or "duplicate key" in text


def open_study(name: str, storage, objective: str, sampler_seed: int, pruner, target=None):
    """Create the study, or load it when it exists and optimises the same objective (the policy
    objective: the same policy at the same fee). The TPE
    sampler's seed is offset by the trials already stored, so a resumed study does not replay
    the random start-up trials of the first call (workers started at the same moment should
    each get their own --sampler-seed)."""
    import optuna

    direction = OBJECTIVES[objective][0]
    stored = 0
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        study_id = None
    if study_id is not None:
        had = storage.get_study_user_attrs(study_id).get("objective")
        if had not in (None, objective):
            raise FcError(f"study {name!r} optimises {had}; run it with --objective {had}")
        if storage.get_study_directions(study_id)[0].name.lower() != direction:
            raise FcError(f"study {name!r} does not {direction} ({objective}); use another --study")
        _check_target(name, storage.get_study_user_attrs(study_id).get("policy_target"), target)
        stored = len(storage.get_all_trials(study_id, deepcopy=False))
    sampler = optuna.samplers.TPESampler(seed=sampler_seed + stored)
    study = optuna.create_study(
        study_name=name, storage=storage, sampler=sampler, pruner=pruner, direction=direction,
        load_if_exists=True,
    )  # fmt: skip
    if study_id is None:
        study.set_user_attr("objective", objective)
        if target is not None:
            study.set_user_attr("policy_target", target.stored())
    return study


def _check_target(name: str, had: dict | None, target) -> None:
    if had is not None and target is not None and had != target.stored():
        raise FcError(
            f"study {name!r} scores the {had['policy']} policy at {had['fee_bps']:g} "
            f"bps; run it with --policy {had['policy']} --fee-bps {had['fee_bps']:g}"
        )


def pruner_for(objective: str, name: str, startup_trials: int, warmup: int):
    """The pruner `--pruner` names ("": median, but none for the policy objective, whose value
    exists only after training: training's validation losses do not measure it)."""
    import optuna

    name = name or ("none" if objective == POLICY_OBJECTIVE else "median")
    if name not in ("median", "none"):
        raise FcError(f"--pruner {name!r}: use median or none")
    if name == "median" and objective == POLICY_OBJECTIVE:
        raise FcError(f"--pruner median: {objective} is scored once training is done, so there "
                      "is nothing to prune on; use --pruner none (the default for it)")  # fmt: skip
    if name == "none":
        return optuna.pruners.NopPruner()
    return median_pruner(startup_trials, warmup)


def median_pruner(startup_trials: int, warmup: int):
    """Optuna's median pruner over validations: no pruning before `startup_trials` trials have
    completed, nor before a trial's `warmup`-th validation (about ten validations an epoch)."""
    import optuna

    if startup_trials < 0 or warmup < 0:
        raise FcError("--prune-startup and --prune-warmup must be >= 0")
    return optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=warmup)
