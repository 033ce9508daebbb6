"""The GRU family: the workshop's Forecast (and seed ensembles of it) behind core.learning.family.

Its files in a run folder: model.pt (the state dict, keys gru.* and fc.*, so the workshop's own
class loads it) for a single run; for an ensemble (`--seeds N`, N > 1) no model.pt of its own but
members/seed-<k>/ for k = seed .. seed + N - 1, each a run folder of its own. A calibrated run's
temperature comes from config.json.
"""

import os
from pathlib import Path

from fc.core.errors import FcError
from fc.core.learning.config import TrainConfig
from fc.core.learning.family import BLOCK, in_blocks, refuse_unused

WORKERS = min(2, os.cpu_count() or 1)  # threads of merged windows (bench/backtest_speed.py)
TABULAR_OPTIONS = ("lags", "num_leaves", "min_data_in_leaf")  # the tabular families' alone


def member_dirs(run_dir: str | Path, config: TrainConfig) -> list[Path]:
    """The members' run folders of an ensemble (config.seeds > 1), in seed order."""
    return [Path(run_dir) / "members" / f"seed-{config.seed + k}" for k in range(config.seeds)]


class GruFamily:
    name = "gru"
    unused = TABULAR_OPTIONS  # options that mean nothing to it (refused when given)
    files = ("*.pt",)  # model.pt, and each member's under members/

    def check(self, config: TrainConfig) -> None:
        from fc.core.learning.losses import LOSSES
        from fc.core.learning.training import with_scheme_defaults

        config = with_scheme_defaults(config)
        refuse_unused(config, self.unused, self.name)
        if config.loss not in LOSSES:
            raise FcError(f"--loss {config.loss!r}: use one of {', '.join(LOSSES)}")
        if min(config.hidden, config.layers, config.seq_len, config.batch_size, config.chunk) < 1:
            raise FcError("--hidden, --layers, --seq-len, --batch-size and --chunk must be >= 1")
        if config.scaling not in ("std", "none"):
            raise FcError(f"--scaling {config.scaling!r}: use std or none")

    def fit(self, config, grid, on_progress=None, on_validation=None, timing=None):
        from fc.core.learning.training import fit

        return fit(config, grid, on_progress, on_validation, timing)

    def fit_universe(self, config, grids, on_progress=None, on_validation=None, timing=None):
        from fc.core.learning.pooled import fit_pooled

        return fit_pooled(config, grids, on_progress, on_validation, timing)

    def save(self, model, folder: Path) -> None:
        import torch

        state = model.state_dict()
        torch.save({k: v.detach().cpu() for k, v in state.items()}, Path(folder) / "model.pt")

    def load(self, folder: Path, config: TrainConfig, device: str = "cpu"):
        """The workshop's Forecast for a single uncalibrated run, else an Ensemble of the
        members with the run's temperature, in eval mode."""
        from fc.core.learning.model import Ensemble

        if not (config.seeds >= 1 and 0 < config.temperature < float("inf")):
            raise FcError(f"{folder}: config.json has seeds {config.seeds} and temperature "
                          f"{config.temperature}; the run folder is damaged")  # fmt: skip
        if config.seeds > 1:
            paths = [d / "model.pt" for d in member_dirs(folder, config)]
            model = Ensemble([_forecast(p, config, device) for p in paths], config.temperature)
        else:
            model = _forecast(Path(folder) / "model.pt", config, device)
            if config.temperature != 1.0:
                model = Ensemble([model], config.temperature)
        return model.eval()

    def predictor(self, folder: Path, config: TrainConfig, device: str = "auto"):
        """Window semantics; torch and the model load at the first call (a backtest read from
        the cache needs neither). On the CPU through core.learning.merged_windows (the same
        p_up, ~5x less work); on CUDA in plain batches, as window_p_up computes them."""

        def predict(features, ends, progress=None):
            import torch

            from fc.core.learning.merged_windows import model_p_up
            from fc.core.learning.model import Scaling, window_p_up
            from fc.core.learning.training import resolve_device

            on = resolve_device(device)
            model = self.load(folder, config)
            scaling = Scaling(config.scale_center, config.scale_scale)
            if on == "cpu":
                threads = torch.get_num_threads()
                torch.set_num_threads(1)  # one per worker thread, see merged_window_p_up
                try:
                    return model_p_up(model, features, ends, config.seq_len, scaling, progress,
                                      WORKERS)  # fmt: skip
                finally:
                    torch.set_num_threads(threads)

            def p_up_at(features, ends):
                return window_p_up(model, features, ends, config.seq_len, scaling, BLOCK, on)

            return in_blocks(p_up_at, features, ends, progress)

        return predict

    def reference_p_up(self, model, config: TrainConfig, features, ends, device: str = "cpu"):
        from fc.core.learning.model import Scaling, window_p_up

        scaling = Scaling(config.scale_center, config.scale_scale)
        return window_p_up(model, features, ends, config.seq_len, scaling, device=device)

    def export_model(self, model):
        return model

    def label(self, config: TrainConfig) -> str:
        return f"{config.loss}-h{config.hidden}-l{config.layers}"


def _forecast(path: Path, config: TrainConfig, device: str):
    import torch

    from fc.core.learning.model import Forecast

    model = Forecast(config.hidden, config.layers, config.n_inputs)
    try:
        state = torch.load(path, map_location=device, weights_only=True)
        model.load_state_dict(state)
    except (OSError, RuntimeError, EOFError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FcError(f"{path}: cannot load the model ({first})") from None
    return model


GRU = GruFamily()
