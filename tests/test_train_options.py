"""The options of every command that trains are defined once (cli/train_options.py): each maps
onto a TrainConfig field with the same default, and fc train, walk, sweep and tune all take it."""

from dataclasses import fields

import pytest
import typer
from conftest import one_line_error
from typer.testing import CliRunner

from fc.cli import train_options
from fc.cli.main import app
from fc.core.learning.config import TrainConfig
from fc.core.studies import tune

runner = CliRunner()


def command_options(name: str) -> set[str]:
    """The parameter names of `fc <name>` as click sees them."""
    group = typer.main.get_command(app)
    command = group.commands[name]
    if name == "tune":
        command = command.commands["run"]
    return {p.name for p in command.params}


def test_every_training_option_is_a_config_field_with_its_default():
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    for option in train_options.TRAINING:
        assert option.name in defaults, option.name
        assert option.default == defaults[option.name], option.name


@pytest.mark.parametrize(
    "command, own",
    [
        ("train", set()),
        # walk sets each fold's split itself and has no test range or temperature
        ("walk", {"split", "test_from", "calibrate"}),
        # sweep takes lists of these three (its grid)
        ("sweep", set()),
    ],
)
def test_every_command_that_trains_takes_every_training_option(command, own):
    names = command_options(command)
    for option in (*train_options.DATA, *train_options.TRAINING):
        if option.name in own or (command == "sweep" and option.name == "threads"):
            continue
        assert option.name in names, f"fc {command} lacks --{option.name.replace('_', '-')}"


def test_tune_takes_the_data_options_and_every_training_field():
    names = command_options("tune")
    for option in train_options.DATA:
        assert option.name in names
    settable = tune._defaults()
    for option in train_options.TRAINING:
        assert option.name in settable, option.name
    assert tune.option_values(["--family", "gru", "--seq-len", "64"]) == {
        "family": "gru",
        "seq_len": "64",
    }


def test_walk_keeps_its_own_default_of_epochs():
    group = typer.main.get_command(app)
    epochs = next(p for p in group.commands["walk"].params if p.name == "epochs")
    assert epochs.default == 4
    epochs = next(p for p in group.commands["train"].params if p.name == "epochs")
    assert epochs.default == 7


@pytest.mark.parametrize("command", ["train", "sweep"])
def test_an_unknown_family_is_one_line_before_any_candle_is_read(command, tmp_path):
    result = runner.invoke(
        app, [command, "--family", "transformer", "--data", str(tmp_path / "absent.parquet")]
    )
    one_line_error(result, "transformer", "gru")


def test_walk_refuses_an_unknown_family_too(tmp_path):
    result = runner.invoke(
        app,
        ["walk", "--start", "2024-01-01", "--family", "xgb", "--data", str(tmp_path / "x.csv")],
    )
    one_line_error(result, "xgb")


def test_sweep_is_the_gru_grid_and_says_so_for_another_family(tmp_path):
    result = runner.invoke(app, ["sweep", "--family", "lightgbm", "--data", str(tmp_path / "x")])
    one_line_error(result, "fc tune --family")
