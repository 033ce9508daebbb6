"""Where a `fc train` process spends its wall time: start-up (interpreter, imports, data, grid,
series) before the first optimiser step, training, and the finish after the last step (the
exact-window validation of every validation decision, saving, the plot)."""

import os
import time

_IMPORTED = time.time()  # the fallback start where /proc is not there


def process_started() -> float:
    """The wall-clock time (time.time()) this process started, from /proc on Linux (10 ms
    resolution), so interpreter start-up and imports count; else when this module was imported."""
    try:
        with open("/proc/self/stat") as f:
            # the command name (field 2) may hold spaces: count fields after its ")"
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return time.time() - (uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return _IMPORTED


def train_timing(started: float, stamps: dict, now: float | None = None) -> dict:
    """Seconds per phase from the process start and train()'s `timing` stamps."""
    now = time.time() if now is None else now
    first = stamps.get("first_step", stamps.get("last_step", now))
    last = stamps.get("last_step", now)
    parts = {}  # start-up's parts where the caller stamped them (fc train does)
    if "imported" in stamps and "data_loaded" in stamps:
        parts = {
            "import_seconds": round(stamps["imported"] - started, 3),
            "data_seconds": round(stamps["data_loaded"] - stamps["imported"], 3),
            "prepare_seconds": round(first - stamps["data_loaded"], 3),
        }
    return {
        **parts,
        "startup_seconds": round(first - started, 3),
        "training_seconds": round(last - first, 3),
        "finish_seconds": round(now - last, 3),
        "total_seconds": round(now - started, 3),
    }


def train_result(run_dir, stamps: dict, started: float | None = None) -> dict:
    """`fc train --json`: the run folder, its validation beside the class prior, and timing."""
    import json
    from pathlib import Path

    metrics = json.loads((Path(run_dir) / "metrics.json").read_text())
    return {
        "run": str(run_dir),
        "steps": metrics["steps"],
        "validation": metrics["validation"],
        "class_prior": metrics["baselines"]["class_prior"],
        **train_timing(process_started() if started is None else started, stamps),
    }
