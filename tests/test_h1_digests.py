"""H = 1 unchanged: the default runs' files are byte for byte those fc wrote before horizons,
cadences and sleeves existed (issue 25). The digests in h1_digests.json were taken on the code
before that change; at the default horizon and cadence nothing new may be written: no new key in
config.json, metrics.json or graph metadata, no new column, no other number.

Seeded synthetic candles, a few CPU steps on one torch thread: deterministic on one machine, but
torch's CPU kernels round differently on another instruction set (AVX2, AVX-512, AMX). So the
torch runs' digests are kept per kernel fingerprint (`kernels`: the digest of a few seeded GRU
training steps); on a machine whose fingerprint has none, the digests that do not go through
torch's arithmetic are compared (LightGBM's whole run, the GRU runs' config.json and keys) and
the torch ones are reported as not comparable here. A digest differs after a dependency upgrade
(torch, pyarrow, onnx write their version into some files); retake them then with
`python tests/test_h1_digests.py` on code known to be unchanged (it adds this machine's)."""

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


TORCH_RUNS = ("gru", "pooled_relative")
TORCH_FREE = ("config.json", "metrics_keys")  # of the torch runs: no torch arithmetic in them


def kernels() -> str:
    """This machine's fingerprint of torch's CPU arithmetic: the digest of a seeded GRU's
    weights after three Adam steps on random windows."""
    import torch

    from fc.core.learning.model import Forecast

    torch.manual_seed(0)
    model = Forecast(8, 1, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    x = torch.randn(16, 32, 1)
    for _ in range(3):
        optimizer.zero_grad()
        model(x).float().pow(2).mean().backward()
        optimizer.step()
    weights = torch.cat([p.detach().flatten() for p in model.parameters()])
    return hashlib.sha256(weights.numpy().tobytes()).hexdigest()


def expected_here(saved: dict, fingerprint: str) -> tuple[dict, bool]:
    """(the digests this machine must reproduce, whether they include the torch runs')."""
    mine = saved["torch"].get(fingerprint)
    if mine is not None:
        return {**saved["torch_free"], **mine}, True
    any_torch = next(iter(saved["torch"].values()))
    return {**saved["torch_free"], **{run: {k: any_torch[run][k] for k in TORCH_FREE}
                                      for run in TORCH_RUNS}}, False  # fmt: skip


def split(digests: dict) -> tuple[dict, dict]:
    """(the torch-free digests, the torch runs' digests) of take()'s answer."""
    free = {k: v for k, v in digests.items() if k not in TORCH_RUNS}
    return free, {k: v for k, v in digests.items() if k in TORCH_RUNS}


def test_default_runs_are_byte_identical_to_before_horizons(tmp_path):
    saved = json.loads(DIGESTS.read_text())
    expected, whole = expected_here(saved, kernels())
    got = take(tmp_path)
    if not whole:
        got = {**split(got)[0], **{run: {k: got[run][k] for k in TORCH_FREE} for run in TORCH_RUNS}}
    assert got == expected
    if not whole:
        print("torch runs' digests: none recorded for this machine's kernels; torch-free compared")


if __name__ == "__main__":  # retake the digests (see the module's docstring)
    import tempfile

    import torch

    torch.set_num_threads(1)
    saved = json.loads(DIGESTS.read_text()) if DIGESTS.is_file() else {"torch": {}}
    with tempfile.TemporaryDirectory() as folder:
        free, torch_runs = split(take(Path(folder)))
    saved["torch_free"], saved["torch"][kernels()] = free, torch_runs
    DIGESTS.write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n")
    sys.exit(0)
