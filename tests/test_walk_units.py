"""fc walk's folds as units (core.studies.walk_units), in this process: a fold that raises is one
line naming it and the finished folds are kept; the same --out then trains only what is missing
(counted); an --out of another walk or of anything else is
refused in one line with nothing lost; the executor options' bad input at the CLI."""

import pytest
from conftest import make_candles, one_line_error
from typer.testing import CliRunner

from fc.cli.main import app
from fc.core.data.feature_set import parse_features
from fc.core.data.inputs import symbol_grids, with_features
from fc.core.errors import FcError
from fc.core.learning.config import TrainConfig
from fc.core.studies import walk_units
from fc.core.studies.walk import FoldUnits, WalkConfig, walk_forward

SYMBOL = "SYNTH/USDT"
WALK = WalkConfig(start="2024-04-15", every="10D", val="20D")  # two folds of the file below


@pytest.fixture(scope="module")
def candle_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "candles.parquet"
    make_candles(3000, "1h", seed=5).to_parquet(path)  # 2024-01-01 .. 2024-05-05
    return path


def walk(candle_file, out, walk=WALK):
    spec = parse_features("close", SYMBOL)
    candles, sources = symbol_grids(spec, "1h", candle_file, {}, None)
    path, digest = sources[SYMBOL]
    base = TrainConfig(symbol=SYMBOL, timeframe="1h", data=path, data_sha256=digest,
                       family="lightgbm", seq_len=32, device="cpu")  # fmt: skip
    grid = with_features(spec, candles, "1h")
    return walk_forward(base, walk, grid, out.parent, units=FoldUnits(out=out, threads=1))


def test_a_raising_fold_is_named_the_rest_kept_and_the_same_out_trains_only_the_missing(
    candle_file, tmp_path, monkeypatch
):
    trained = []
    train = walk_units.train_fold

    def failing(config, fold, grid, scratch):
        trained.append(fold.number)
        if fold.number == 2 and len(trained) == 2:
            raise FcError("no memory left on this worker")
        return train(config, fold, grid, scratch)

    monkeypatch.setattr(walk_units, "train_fold", failing)
    out = tmp_path / "walk"
    with pytest.raises(FcError) as caught:
        walk(candle_file, out)
    assert str(caught.value) == "fold-02-2024-04-25: no memory left on this worker"
    assert (out / "fold-01-2024-04-15" / "model.txt").is_file()
    assert (out / "units" / "fold-01-2024-04-15.json").is_file()
    assert not (out / "fold-02-2024-04-25").exists() and not (out / "walk.json").exists()
    _, resumed = walk(candle_file, out)
    assert trained == [1, 2, 2]  # the rerun trained fold 2 alone (a fresh walk's bytes after a
    # resume: tests/test_cluster.py, the client killed mid-walk)
    assert [r["fold"] for r in resumed["folds"]] == [1, 2] and (out / "walk.json").is_file()


def test_an_out_of_another_walk_or_of_something_else_is_refused_and_kept(candle_file, tmp_path):
    out = tmp_path / "walk"
    walk(candle_file, out, WalkConfig(start="2024-04-25", every="10D", val="20D"))
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    with pytest.raises(FcError, match="holds another walk"):
        walk(candle_file, out)  # another start: another walk
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("keep me")
    with pytest.raises(FcError, match="not an fc walk's"):
        walk(candle_file, other)
    assert [p.name for p in other.iterdir()] == ["todo.txt"]


@pytest.mark.parametrize(
    "more, words",
    [
        (["--workers", "-1"], "--workers -1: give 0"),
        (["--workers", "2", "--cluster", "tcp://127.0.0.1:8786"], "--workers with --cluster"),
        (["--cluster", "127.0.0.1:8786"], "is not a scheduler address"),
        (["--cluster", "tcp://127.0.0.1:8786", "--tls-ca", "ca.pem"], "needs a tls://"),
        (["--data-root", "."], "--data-root is where cluster workers"),
    ],
)
def test_executor_options_bad_input_is_one_line_before_the_data_is_read(more, words, tmp_path):
    args = ["walk", "--data", str(tmp_path / "absent.parquet"), "--start", "2024-04-15"]
    one_line_error(CliRunner().invoke(app, [*args, "--runs", str(tmp_path), *more]), words)
