"""H = 1 unchanged: the default runs' files are byte for byte those fc wrote before horizons,
cadences and sleeves existed (issue 25). The digests in h1_digests.json were taken on the code
before that change; at the default horizon and cadence nothing new may be written: no new key in
config.json, metrics.json or graph metadata, no new column, no other number.

Seeded synthetic candles, a few CPU steps on one torch thread: deterministic. A digest differs
after a dependency upgrade (torch, pyarrow, onnx write their version into some files); retake
them then with `python tests/test_h1_digests.py` on code known to be unchanged."""

import hashlib
import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fc.cli.main import app
from fc.core.data.synth import synth_candles

runner = CliRunner()
DIGESTS = Path(__file__).with_name("h1_digests.json")
SPLIT, TEST = "2023-01-25", "2023-02-05"
RANGES = ["--split", SPLIT, "--test-from", TEST, "--threads", "1", "--quiet"]
GRU = ["--seq-len", "32", "--hidden", "8", "--layers", "1", "--epochs", "1", "--max-steps", "3"]
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
# fields that are timing or caching, not results (paths: the tmp folder is cut from them)
VOLATILE = ("prediction_cache", "seconds")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def text_sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def stable_json(value, root: str):
    """A JSON file's content without timing and cache fields, the folder `root` cut from text."""
    if isinstance(value, dict):
        return {
            k: stable_json(v, root)
            for k, v in value.items()
            if not any(word in k for word in VOLATILE)
        }
    if isinstance(value, list):
        return [stable_json(v, root) for v in value]
    if isinstance(value, str):
        return value.replace(root, "<tmp>")
    return value


def invoke(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.stdout


def run_digests(run: Path, root: Path, export: bool) -> dict:
    """sha256 of the run's model files, config.json and metrics.json, of its backtest's
    positions.parquet and JSON (less VOLATILE), and of its ONNX graph(s)."""
    report = json.loads(invoke(["backtest", str(run), "--fee-bps", "5", "--json"]))
    report = stable_json(report, str(run))  # the run folder's name holds the time of training
    text = json.dumps(stable_json(report, str(root)), sort_keys=True)
    out = {name: sha(run / name) for name in ("model.pt", "model.txt") if (run / name).is_file()}
    for name in ("config.json", "metrics.json"):  # the data file's path and train_seconds aside
        saved = stable_json(json.loads((run / name).read_text()), str(root))
        out[name] = text_sha(json.dumps(saved, sort_keys=True))
    out["metrics_keys"] = sorted(json.loads((run / "metrics.json").read_text()))
    out["backtest.json"] = text_sha(text)
    out["positions.parquet"] = sha(run / "backtest" / "positions.parquet")
    if export:
        invoke(["export", str(run), "--onnx", "--json"])
        for graph in sorted((run / "export").glob("*.onnx")):
            out[graph.name] = sha(graph)
    return out


def take(root: Path) -> dict:
    """The digests of three default runs on seeded candles: a GRU, LightGBM, and a GRU pooled
    over three symbols with the relative target."""
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    files = {}
    for seed, symbol in enumerate(SYMBOLS, start=1):
        files[symbol] = data / f"{symbol.replace('/', '_')}-30m.parquet"
        synth_candles(days=45, timeframe="30m", seed=seed).to_parquet(files[symbol])
    runs = root / "runs"
    common = [*RANGES, "--runs", str(runs)]
    digests = {}
    for name, extra in (
        ("gru", GRU),
        ("lightgbm", ["--family", "lightgbm", "--seq-len", "32", "--min-data-in-leaf", "20"]),
    ):
        out = invoke(["train", "--data", str(files["BTC/USDT"]), *extra, *common])
        digests[name] = run_digests(Path(out.strip().splitlines()[-1]), root, export=True)
    pairs = [arg for s in SYMBOLS for arg in ("--data", f"{s}={files[s]}")]
    out = invoke(["train", "--symbols", ",".join(SYMBOLS), *pairs, "--target", "relative",
                  *GRU, *common])  # fmt: skip
    digests["pooled_relative"] = run_digests(Path(out.strip().splitlines()[-1]), root, False)
    return digests


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):
    """Every test of this module on one torch thread (conftest.one_torch_thread)."""


def test_default_runs_are_byte_identical_to_before_horizons(tmp_path):
    expected = json.loads(DIGESTS.read_text())
    assert take(tmp_path) == expected


if __name__ == "__main__":  # retake the digests (see the module's docstring)
    import tempfile

    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        DIGESTS.write_text(json.dumps(take(Path(folder)), indent=2, sort_keys=True) + "\n")
    sys.exit(0)
