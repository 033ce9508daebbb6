"""fc tune's trials as units of the executor seam (--workers, --cluster).

Each unit opens the study's RDB storage itself (its URL travels, not a connection), asks for one
trial and runs it as core.studies.tune.run_trial does in the serial path; the storage's heartbeat
and RetryFailedTrialCallback (core.studies.tune_study.open_storage) mark a trial whose worker died
failed and enqueue it again. Trials meet in the storage, so the order they finish in steers the
sampler: a parallel study is not byte-identical to a serial one, but every trial is recorded once.
The unit trains in a scratch folder; the client writes the run folder where the trial's run_dir
says (runs/<name>-t<trial number>: unique without asking anyone).
"""

import time
from pathlib import Path

from fc.core.studies.executor import ExecutorOptions, open_executor


def trial_unit(task: dict) -> dict | None:
    """One trial of the study, wherever it runs: (frozen trial, run folder name, its files)."""
    import tempfile

    import optuna
    import torch

    from fc.core.studies import tune as search
    from fc.core.studies.tune_study import open_storage
    from fc.core.studies.unit_grids import unit_grid
    from fc.core.studies.unit_inputs import folder_bytes

    if task["deadline"] is not None and time.time() > task["deadline"]:
        return None  # --timeout: no trial starts after it
    if task["threads"] > 0:
        torch.set_num_threads(task["threads"])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sources = task["sources"]
    grid = {t: unit_grid(s) for t, s in sources.items()} if len(sources) > 1 else (
        unit_grid(next(iter(sources.values()))))  # fmt: skip
    sampler = optuna.samplers.TPESampler(seed=task["seed"])
    study = optuna.load_study(study_name=task["study"], storage=open_storage(task["storage"]),
                              sampler=sampler, pruner=task["pruner"])  # fmt: skip
    made = {}
    with tempfile.TemporaryDirectory(prefix="fc-trial-") as scratch:

        def objective(trial):
            made["number"] = trial.number
            try:
                return search.run_trial(trial, task["base"], task["space"], grid, scratch,
                                        task["objective"], task["target"])  # fmt: skip
            finally:  # pruned or not, a run folder trained is kept, under the client's runs
                for run in Path(scratch).iterdir():
                    made["name"] = f"{run.name}-t{trial.number}"
                    made["files"] = folder_bytes(run)
                    trial.set_user_attr("run_dir", str(Path(task["runs"]) / made["name"]))

        study.optimize(objective, n_trials=1, catch=())
    number = made.pop("number")  # others' trials may have finished meanwhile: this one's
    return {"trial": next(t for t in study.get_trials(deepcopy=False) if t.number == number),
            **made}  # fmt: skip


def tune_units(study, storage: str, base, space, grid, runs, objective, n_trials, timeout,
               on_trial, target, executor: ExecutorOptions, threads: int, on_event=None,
               sampler_seed: int = 0):  # fmt: skip
    """Run n_trials trials of `study` (already opened at the RDB URL `storage`, which every
    unit must reach: PostgreSQL across machines, SQLite on one) as units; on_trial(frozen
    trial) as each comes back."""
    from fc.core.errors import FcError
    from fc.core.studies.unit_grids import grid_source
    from fc.core.studies.unit_inputs import write_folder

    grids = grid if isinstance(grid, dict) and base.features in grid else None
    if not n_trials:
        raise FcError("--n-trials 0 (until --timeout) runs in one process; with --workers or "
                      "--cluster give the number of trials")  # fmt: skip
    if storage.startswith("sqlite:///") and not Path(storage[10:]).is_absolute():
        storage = f"sqlite:///{Path(storage[10:]).resolve()}"  # the units' folder may differ
    deadline = None if timeout is None else time.time() + timeout
    with open_executor(executor, on_event) as ex:
        if grids is not None:  # fc tune over several --features: one source each
            from dataclasses import replace

            sources = {t: grid_source(replace(base, features=t), g, ex) for t, g in grids.items()}
        else:
            sources = {base.features: grid_source(base, grid, ex)}
        common = {"study": study.study_name, "storage": storage, "base": base,
                  "space": space, "objective": objective, "target": target, "runs": str(runs),
                  "pruner": study.pruner, "sources": sources, "deadline": deadline,
                  "threads": threads}  # fmt: skip
        tasks = {f"trial-{i + 1}": {**common, "seed": sampler_seed + len(study.trials) + i}
                 for i in range(n_trials)}  # fmt: skip
        if on_event:
            on_event(None, "planned", {"units": len(tasks), "finished": 0})
        for _, result in ex.run(trial_unit, tasks):
            if result is None:
                continue
            if "files" in result:
                write_folder(Path(runs) / result["name"], result["files"])
            on_trial(result["trial"])
    return study
