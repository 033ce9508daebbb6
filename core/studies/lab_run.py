"""`fc lab plan | run | status`: a lab file's variants as (variant, fold) units, computed once each.

plan_lab reads every variant's candles and plans its folds (every user error shows here, before
any training); run_lab computes the units the folder lacks through the executor seam
(core.studies.executor: serial here, local processes or a Dask cluster; the client alone writes
the folder), summarises each variant whose units are all done and writes the reports.
"""

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from fc.core.data.inputs import parse_data
from fc.core.errors import FcError
from fc.core.studies.executor import ExecutorOptions, open_executor
from fc.core.studies.lab import Lab
from fc.core.studies.lab_folder import LabFolder
from fc.core.studies.lab_units import run_unit, unit_key, unit_task, variant_inputs
from fc.core.studies.walk import WalkConfig, plan_folds


@dataclass
class PlannedVariant:
    id: str  # content hash of its units and its backtest options
    name: str
    options: dict
    walk: WalkConfig
    slippage_bps: float
    runs: Path  # where its looks are recorded (RUNS/ledger.sqlite)
    units: list[str]  # unit keys, fold order
    grid: object  # a universe: {symbol: grid}
    base: object

    @property
    def universe(self) -> bool:
        return isinstance(self.grid, dict)


def default_out(lab: Lab) -> Path:
    """The lab folder beside the lab file, named after it: labs/btc.toml -> labs/btc/."""
    return lab.path.with_suffix("")


def plan_lab(lab: Lab) -> tuple[list[PlannedVariant], dict[str, dict]]:
    """(variants, {unit key: task}) of the lab; reads the candles, trains nothing."""
    variants, tasks, loaded = [], {}, {}
    for variant in lab.variants:
        resolved = variant.resolved
        source = json.dumps([resolved["data"], resolved["fields"]], sort_keys=True, default=str)
        try:
            if source not in loaded:
                loaded[source] = variant_inputs(resolved)
            grid, base = loaded[source]
            walk = WalkConfig(**resolved["walk"])
            folds = plan_folds(_fold_frame(grid, base), walk, base.seq_len, base.horizon)
            _check_ks(lab, grid)
        except FcError as exc:
            raise FcError(f"{lab.path.name}, variant {variant.name!r}: {exc}") from None
        keys = []
        for fold in folds:
            task = unit_task(resolved, base, fold)
            keys.append(unit_key(task))
            tasks[keys[-1]] = task
        slippage = float(resolved["backtest"].get("slippage_bps", 0.0))
        described = json.dumps([keys, resolved["walk"], slippage], sort_keys=True)
        variants.append(PlannedVariant(
            hashlib.sha256(described.encode()).hexdigest()[:12], variant.name, variant.options,
            walk, slippage, Path(resolved["data"]["runs"]), keys, grid, base))  # fmt: skip
    return variants, tasks


def _fold_frame(grid, base):
    """What the folds are planned on: the grid, or a universe's frame (fc walk --symbols's)."""
    if not isinstance(grid, dict):
        return grid
    from fc.core.data.universe import check_pairs, universe_frame

    check_pairs(grid, base.first_decision)
    return universe_frame(grid, base.first_decision)


def report_ks(lab: Lab) -> tuple[int, ...]:
    """The long-short k a universe variant is reported at: [report] k, else the policy's."""
    from fc.core.evaluation.policies import PolicyParams

    return lab.ks or (PolicyParams().k,)


def _check_ks(lab: Lab, grid) -> None:
    """[report] k: for a universe at most half its symbols; a lab of one symbol has no k."""
    if not isinstance(grid, dict):
        if lab.ks:
            raise FcError(f"[report] k = {list(lab.ks)} is the long-short of a universe and this "
                          "variant trades one symbol; give symbols = A,B,… or drop k")  # fmt: skip
        return
    too_many = [k for k in report_ks(lab) if 2 * k > len(grid)]
    if too_many:
        raise FcError(f"[report] k = {too_many[0]} is more than half the universe of {len(grid)} "
                      f"symbols; give k <= {len(grid) // 2}")  # fmt: skip


def manifest_of(lab: Lab, folder: LabFolder, variants: list[PlannedVariant]) -> dict:
    return {
        "lab": os.path.relpath(lab.path, folder.path.resolve()),
        "name": lab.name,
        "lab_file": lab.path.name,
        "fees": list(lab.fees),
        **({"k": list(report_ks(lab))} if any(v.universe for v in variants) else {}),
        "variants": [
            {
                "id": v.id,
                "name": v.name,
                "options": v.options,
                "units": v.units,
                "family": v.base.family,
                "runs": str(v.runs),
                **({"universe": True} if v.universe else {}),
            }
            for v in variants
        ],  # fmt: skip
    }


def lab_plan(lab: Lab, out: Path) -> dict:
    """What `fc lab run` would do: variants, units, those done, and an estimate of the time
    left from the units already measured in the folder (per family where it has some)."""
    variants, _ = plan_lab(lab)
    folder = LabFolder.for_lab(out, lab.path, create=False)
    seconds = folder.unit_seconds() if folder.path.is_dir() else {}
    by_family: dict[str, list[float]] = {}
    for v in variants:
        by_family.setdefault(v.base.family, []).extend(seconds[k] for k in v.units if k in seconds)
    measured = [s for values in by_family.values() for s in values]
    rows, estimate = [], 0.0
    for v in variants:
        done = sum(k in seconds for k in v.units)
        known = by_family[v.base.family] or measured
        left = len(v.units) - done
        estimate += left * (sum(known) / len(known)) if known else 0.0
        rows.append({"id": v.id, "name": v.name, "family": v.base.family,
                     "units": len(v.units), "done": done})  # fmt: skip
    left = sum(r["units"] - r["done"] for r in rows)
    return {"lab": str(lab.path), "out": str(out), "variants": rows,
            "units": sum(r["units"] for r in rows), "done": len(seconds), "left": left,
            "measured_units": len(measured),
            "estimate_seconds": round(estimate, 1) if measured or not left else None}  # fmt: skip


def run_lab(
    lab: Lab,
    out: Path,
    on_unit=None,
    executor: ExecutorOptions = ExecutorOptions(),
    on_event=None,
) -> dict:
    """Compute the units the folder lacks through the executor seam (every variant's folds in
    one pool), summarise every variant whose units are all done and whose summary is missing or
    stale, write the reports. on_unit(done, total, name, fold) after each unit; on_event the
    executor's events (a progress bar), with "planned" first. Returns counts: units computed
    now and reused from the folder."""
    from fc.core.studies.lab_report import write_reports
    from fc.core.studies.lab_universe import summarise_universe
    from fc.core.studies.lab_variant import summarise_variant

    executor.check()
    variants, tasks = plan_lab(lab)  # every user error before any work
    folder = LabFolder.for_lab(out, lab.path, create=True)
    folder.write_manifest(manifest_of(lab, folder, variants), lab.text)
    todo = {k: t for k, t in tasks.items() if not folder.has_unit(k)}
    owner = {k: (v, i + 1) for v in variants for i, k in enumerate(v.units)}
    in_flight: set[str] = set()

    def events(key: str, event: str, info: dict) -> None:
        # running.json names the units in flight, for fc lab status
        (in_flight.add if event == "start" else in_flight.discard)(key)
        folder.note_running(sorted(in_flight))
        if on_event:
            on_event(key, event, info)

    with folder.run_lock(), open_executor(executor, events) as ex:
        if on_event:
            on_event(None, "planned", {"units": len(todo), "finished": len(tasks) - len(todo)})
        if executor.kind == "cluster":  # workers read each file under --data-root, or sent
            _share_files(todo, ex.share)
        for done, (key, result) in enumerate(ex.run(run_unit, todo), start=1):
            variant, fold = owner[key]
            folder.save_unit(key, result, {"variant": variant.name, "fold": tasks[key]["fold"]})
            if on_unit:
                on_unit(done, len(todo), variant.name, fold)
        summarised = 0
        for v in variants:
            stored = folder.read_variant(v.id)
            wanted = {"fee_list": list(lab.fees)}
            wanted |= {"k_list": list(report_ks(lab))} if v.universe else {}
            if stored is not None and all(stored.get(k) == w for k, w in wanted.items()):
                continue
            units = [folder.read_unit(k) for k in v.units]
            if v.universe:
                summarise_universe(v.grid, v.base, v.walk, v.slippage_bps, lab.fees,
                                   report_ks(lab), units, folder.variant_dir(v.id))  # fmt: skip
            else:
                look = f"lab:{lab.name}:{v.id}"
                summarise_variant(v.grid, v.base, v.walk, v.slippage_bps, lab.fees, units,
                                  folder.variant_dir(v.id), v.runs, look)  # fmt: skip
            summarised += 1
    report = write_reports(folder)
    return {"out": str(folder.path), "units": len(tasks), "computed": len(todo),
            "reused": len(tasks) - len(todo), "variants": len(variants),
            "summarised": summarised, "report": report}  # fmt: skip


def _share_files(tasks: dict, share) -> None:
    """Each task's --data files as the executor's DataFile references (one per file)."""
    shared: dict = {}
    for task in tasks.values():
        plain, pairs = parse_data(task["data"]["data"])
        paths = [str(p) for p in ([plain] if plain else []) + list(pairs.values())]
        task["files"] = {p: shared.setdefault(p, share(p)) for p in paths}


def lab_status(out: Path) -> dict:
    """Units done, running and left of a lab folder, per variant, from its manifest."""
    folder = LabFolder(out)
    manifest = folder.require_manifest()
    running = set(folder.running())
    rows = []
    for v in manifest["variants"]:
        done = sum(folder.has_unit(k) for k in v["units"])
        now = sum(k in running and not folder.has_unit(k) for k in v["units"])
        rows.append({"id": v["id"], "name": v["name"], "units": len(v["units"]), "done": done,
                     "running": now, "left": len(v["units"]) - done - now,
                     "summarised": folder.read_variant(v["id"]) is not None})  # fmt: skip
    totals = {k: sum(r[k] for r in rows) for k in ("units", "done", "running", "left")}
    return {"out": str(out), "lab": manifest["lab"], "variants": rows, **totals}
