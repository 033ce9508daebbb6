"""The executor seam's speed (issue 27): a LightGBM walk of 8 monthly folds, one thread a unit,
on a loopback Dask cluster of 2 workers against the serial walk (median of 3 each, the ratio
printed), and what the seam costs a unit that trains nothing (one unit's round trip, median of
20, and the time per unit of 40 in a row).

Goals: the 2-worker walk at least 1.5x the serial one on 2 cores; under 0.3 s a no-op unit.
Synthetic seeded candles (fc.core.data.synth), so the bench runs without ../shared.
Run: .venv/bin/python bench/cluster_speed.py
"""

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from timing import median_time

from fc.core.data.feature_set import parse_features
from fc.core.data.inputs import symbol_grids, with_features
from fc.core.data.synth import synth_candles
from fc.core.learning.config import TrainConfig
from fc.core.studies.executor import ExecutorOptions, idle_unit, open_executor
from fc.core.studies.walk import FoldUnits, WalkConfig, walk_forward

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the loopback cluster the tests start
from dask_cluster import DaskCluster  # noqa: E402

SYMBOL, TIMEFRAME = "SYNTH/USDT", "5m"
WALK = WalkConfig(start="2023-07-01", every="1M", val="1M")  # 8 folds to the data's end
REPEATS, IDLE_ROUND_TRIPS, IDLE_BATCH = 3, 20, 40
# enough columns (11 x 16 lags) that a fold trains for seconds, as real walks do
FEATURES = "close,ret,range,body,wicks,volume:48,volatility:48,time"


def walk_once(path: Path, folder: Path, executor: ExecutorOptions) -> int:
    spec = parse_features(FEATURES, SYMBOL)
    candles, sources = symbol_grids(spec, TIMEFRAME, path, {}, None)
    grid = with_features(spec, candles, TIMEFRAME)
    base = TrainConfig(symbol=SYMBOL, timeframe=TIMEFRAME, data=sources[SYMBOL][0],
                       data_sha256=sources[SYMBOL][1], family="lightgbm", seq_len=64, lags=16,
                       features=FEATURES, device="cpu",
                       extra={"lightgbm_threads": 1})  # fmt: skip
    units = FoldUnits(executor, Path(tempfile.mkdtemp(dir=folder)) / "walk", threads=1)
    _, result = walk_forward(base, WALK, grid, folder, units=units)
    return len(result["folds"])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_costs(executor: ExecutorOptions) -> tuple[float, float]:
    """(one no-op unit's round trip, median; seconds a unit of a batch of no-op units)."""
    with open_executor(executor) as ex:
        list(ex.run(idle_unit, {"warm": 0}))
        trips = []
        for i in range(IDLE_ROUND_TRIPS):
            t0 = time.perf_counter()
            list(ex.run(idle_unit, {f"idle-{i}": i}))
            trips.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        list(ex.run(idle_unit, {f"batch-{i}": i for i in range(IDLE_BATCH)}))
        return statistics.median(trips), (time.perf_counter() - t0) / IDLE_BATCH


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="fc-bench-cluster-"))
    path = folder / "candles.parquet"
    synth_candles(days=400, timeframe=TIMEFRAME, seed=7).to_parquet(path)
    folds = walk_once(path, folder, ExecutorOptions())
    cpu = cpu_seconds(os.getpid())
    serial = median_time(lambda: walk_once(path, folder, ExecutorOptions()), REPEATS)
    serial_cpu = (cpu_seconds(os.getpid()) - cpu) / REPEATS
    cluster = DaskCluster(folder / "cluster", workers=2)
    try:
        options = ExecutorOptions(cluster=cluster.address)
        walk_once(path, folder, options)  # the workers import fc and read the file once
        pids = [os.getpid(), *(p.pid for p in cluster.workers.values())]
        before = [cpu_seconds(pid) for pid in pids]
        spread = median_time(lambda: walk_once(path, folder, options), REPEATS)
        client, *workers = [
            (cpu_seconds(p) - b) / REPEATS for p, b in zip(pids, before, strict=True)
        ]
        round_trip, per_unit = idle_costs(options)
    finally:
        cluster.stop()
    ratio = serial / spread
    # what the CPU work allows on 2 idle cores: the busiest worker's share, the client beside it
    allowed = serial_cpu / (max(workers) + client)
    print(f"LightGBM walk, {folds} folds, 1 thread a unit, median of {REPEATS}: serial "
          f"{serial:.1f} s, 2 Dask workers {spread:.1f} s: {ratio:.2f}x (goal >= 1.5x) "
          f"{'PASS' if ratio >= 1.5 else 'FAIL'}")  # fmt: skip
    print(f"CPU seconds a walk: serial {serial_cpu:.1f}; cluster client {client:.1f}, workers "
          f"{' + '.join(f'{w:.1f}' for w in workers)}: {allowed:.2f}x on 2 idle cores; load "
          f"average now {os.getloadavg()[0]:.1f} (other work on this machine)")  # fmt: skip
    print(f"no-op unit on the cluster: round trip {round_trip:.3f} s (median of "
          f"{IDLE_ROUND_TRIPS}), {per_unit:.3f} s a unit in a batch of {IDLE_BATCH} "
          f"(goal < 0.3 s) {'PASS' if round_trip < 0.3 else 'FAIL'}")  # fmt: skip


if __name__ == "__main__":
    main()
