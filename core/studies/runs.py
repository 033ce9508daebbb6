"""The run folder (SPEC §6): its layout, written and read in one place.

`runs/<UTC time>-<loss>-h<hidden>-l<layers>/` holds config.json (core.learning.config), the model
family's own files (core.learning.family: the GRU's model.pt, or members/seed-<k>/ of an
ensemble), history.csv, metrics.json, validation_p_up.parquet, loss.png, and later backtest/ and
export/. Loading a run needs nothing but the folder.
"""

import json
from datetime import datetime, timezone
from pathlib import Path

from fc.core.errors import FcError
from fc.core.learning.config import TrainConfig
from fc.core.learning.family import family_of

# the final checkpoint's p_up at every validation decision (columns time, p_up), saved beside the
# model so a caller that scores a policy on validation (fc tune) need not predict them again
VALIDATION_P_UP = "validation_p_up.parquet"


def new_run_dir(runs: Path, config: TrainConfig) -> Path:
    """A new, empty run folder under `runs`, named by time and the family's label of the config
    (the GRU: loss and size)."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    base = f"{stamp}-{family_of(config).label(config)}"
    for i in range(1, 1000):
        path = Path(runs) / (base if i == 1 else f"{base}-{i}")
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise FcError(f"{runs}: cannot make a new run folder")


def write_config(run_dir: Path, config: TrainConfig) -> None:
    (Path(run_dir) / "config.json").write_text(config.to_json() + "\n")


def write_metrics(run_dir: Path, metrics: dict) -> None:
    (Path(run_dir) / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")


def save_run(run_dir: str | Path, trained) -> None:
    """Write a core.learning.training.Trained into an existing run folder: config.json, the
    family's model files, history.csv, metrics.json, the validation p_up and loss.png."""
    run_dir = Path(run_dir)
    write_config(run_dir, trained.config)
    family_of(trained.config).save(trained.model, run_dir)
    trained.history.to_csv(run_dir / "history.csv", index=False)
    write_metrics(run_dir, trained.metrics)
    trained.predictions.to_parquet(run_dir / VALIDATION_P_UP)
    from fc.core.learning.plots import loss_figure

    figure = loss_figure(trained.history, title=run_dir.name)
    figure.savefig(run_dir / "loss.png", dpi=100)
    import matplotlib.pyplot as plt

    plt.close(figure)  # a sweep trains many runs in one process


def read_config(run_dir: str | Path) -> TrainConfig:
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise FcError(f"{run_dir}: not a run folder (no config.json); give one `fc train` made")
    try:
        return TrainConfig.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        raise FcError(f"{path}: unreadable config ({exc}); the run folder is damaged") from None


def load_run(run_dir: str | Path, device: str = "cpu"):
    """(config, model in eval mode, Scaling) from a run folder alone, the model as its family
    loads it (the GRU: the workshop's Forecast, or an Ensemble of the members with the run's
    temperature; core.learning.model.window_p_up and export take either)."""
    from fc.core.learning.model import Scaling

    config = read_config(run_dir)
    model = family_of(config).load(Path(run_dir), config, device)
    return config, model, Scaling(config.scale_center, config.scale_scale)
