"""`fc lab report` of a 20-variant lab: the time to re-render report.json, report.md and
report.html from the folder (nothing refitted), which must stay under 30 s, and the page's size,
which must stay under 5 MB.

The lab: seeded synthetic 30m candles (`fc data synth`, 120 days), 20 variants (logistic and
LightGBM x 10 lag counts) over two monthly folds, reported at 0, 2 and 5 bps. The page's size
does not grow with the candles (each equity line is thinned to a few hundred points), so a short
series measures it; --days makes a longer one.

Measured on the shared 2-core machine (busy): lab run 81.5 s, fc lab report 15.7 s, report.html
2.20 MB.

Run: .venv/bin/python bench/lab_report_speed.py [--days 120] [--keep DIR]"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LAB = """\
[data]
symbol = "SYNTH/USDT"
store = "data"
timeframe = "30m"
seq_len = 48

[walk]
start = "{start}"
every = "1M"
val = "1M"

[report]
fees = [0, 2, 5]

[grid]
family = ["logistic", "lightgbm"]
lags = [2, 4, 6, 8, 10, 12, 14, 16, 20, 24]
"""


def fc(*args, cwd: Path) -> str:
    command = [sys.executable, "-m", "fc", *map(str, args)]
    return subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True).stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="fc-lab-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    fc("data", "synth", "--days", args.days, "--store", "data", cwd=folder)
    # two monthly folds ending with the data (synth starts on 2023-01-01)
    start = f"2023-{(args.days // 30) - 1:02d}-01"
    (folder / "bench.toml").write_text(LAB.format(start=start))
    t0 = time.perf_counter()
    fc("lab", "run", "bench.toml", "--quiet", cwd=folder)
    ran = time.perf_counter() - t0
    t0 = time.perf_counter()
    fc("lab", "report", "bench", cwd=folder)
    report = time.perf_counter() - t0
    size = (folder / "bench" / "report.html").stat().st_size
    print(f"lab run (20 variants, every unit): {ran:.1f} s")
    print(f"fc lab report (20 variants): {report:.1f} s (limit 30 s)")
    print(f"report.html: {size / 1e6:.2f} MB (limit 5 MB)")
    if report >= 30 or size >= 5e6:
        sys.exit("over the limit")


if __name__ == "__main__":
    main()
