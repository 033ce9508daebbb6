"""The workshop's model, recognisable: a GRU over the feature, a linear head to [up, down] logits.

Feature scaling (x - center) / scale is kept outside the module so the state dict holds exactly
the workshop's keys (gru.*, fc.*); it travels in the run's config and inside exported graphs.
An `Ensemble` holds several such models (a `--seeds N` run) and/or a calibration temperature.
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


class Forecast(nn.Module):
    def __init__(self, hidden: int = 16, layers: int = 3, inputs: int = 1):
        super().__init__()
        self.gru = nn.GRU(inputs, hidden, layers, batch_first=True)
        self.fc = nn.Linear(hidden, 2)

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        """x: (batch, time, inputs) → logits (batch, time, 2), class 0 = up, 1 = down."""
        out, _ = self.gru(x, h)
        return self.fc(out)


class Ensemble(nn.Module):
    """Members trained with different seeds, their probabilities averaged, then one temperature:
    p = softmax(log(mean_k softmax(z_k)) / T), i.e. logit(p_up) = logit(mean p_up) / T. T scales
    the averaged probability's logit, not each member's logits: calibration is one transform of
    what the ensemble predicts, fitted on it alone, and the same formula for one member
    (softmax(z / T)) or many. Probabilities are float64, as window_p_up's softmax is."""

    def __init__(self, members: list[Forecast], temperature: float = 1.0):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.temperature = float(temperature)

    def probabilities(self, x: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """x: (batch, time, 1) → [up, down] probabilities (batch, time or 1, 2), float64."""
        total = 0.0
        for member in self.members:
            out, _ = member.gru(x)
            if last_only:
                out = out[:, -1:]
            total = total + torch.softmax(member.fc(out).double(), dim=-1)
        mean = total / len(self.members)
        if self.temperature == 1.0:  # exactly the members' mean
            return mean
        return torch.softmax(torch.log(mean) / self.temperature, dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (batch, time, 2) whose softmax is `probabilities`: log p, float64."""
        return torch.log(self.probabilities(x))


def last_probabilities(model: Forecast | Ensemble, x: torch.Tensor) -> torch.Tensor:
    """[up, down] probabilities (batch, 2), float64, of the last step of x (batch, time, 1)."""
    if isinstance(model, Ensemble):
        return model.probabilities(x, last_only=True)[:, -1]
    hidden, _ = model.gru(x)
    return torch.softmax(model.fc(hidden[:, -1]).double(), dim=-1)


@dataclass(frozen=True)
class Scaling:
    """x_model = (feature - center) / scale; Scaling(0, 1) feeds the raw feature. With several
    feature columns center and scale are tuples, one value a column (the last axis)."""

    center: float | tuple = 0.0
    scale: float | tuple = 1.0

    def apply(self, x: np.ndarray) -> np.ndarray:
        center, scale = self.center, self.scale
        if isinstance(center, tuple | list):
            center, scale = np.asarray(center, np.float64), np.asarray(scale, np.float64)
        return (np.asarray(x, dtype=np.float64) - center) / scale


def with_columns(x: torch.Tensor, features: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Steps of one feature (…, time) get their column axis (…, time, 1); steps of several
    columns have it already."""
    return x.unsqueeze(-1) if features.ndim == 1 else x


@torch.no_grad()
def window_p_up(
    model: Forecast | Ensemble,
    features: np.ndarray,
    ends: np.ndarray,
    seq_len: int,
    scaling: Scaling = Scaling(),
    batch: int = 2048,
    device: str = "cpu",
) -> np.ndarray:
    """p_up at each decision index in `ends`, each from the window of the seq_len features ending
    there, read from a zero hidden state (SPEC §2: the number training, backtest, export and the
    live loop all agree on)."""
    ends = np.asarray(ends, dtype=np.int64)
    if len(ends) and (ends.min() < seq_len - 1 or ends.max() >= len(features)):
        raise ValueError("a window would reach outside the features")
    x = scaling.apply(features).astype(np.float32)
    windows = np.lib.stride_tricks.sliding_window_view(x, seq_len, axis=0)  # x[s:s+L]
    if x.ndim == 2:
        windows = windows.swapaxes(1, 2)  # (windows, seq_len, columns)
    model = model.to(device).eval()
    out = np.empty(len(ends), dtype=np.float64)
    for i in range(0, len(ends), batch):
        block = windows[ends[i : i + batch] - seq_len + 1]
        xb = with_columns(torch.from_numpy(np.ascontiguousarray(block)).to(device), x)
        out[i : i + batch] = last_probabilities(model, xb)[:, 0].cpu().numpy()
    return out
