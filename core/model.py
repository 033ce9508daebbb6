"""The workshop's model, recognisable: a GRU over the feature, a linear head to [up, down] logits.

Feature scaling (x - center) / scale is kept outside the module so the state dict holds exactly
the workshop's keys (gru.*, fc.*); it travels in the run's config and inside exported graphs.
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


class Forecast(nn.Module):
    def __init__(self, hidden: int = 16, layers: int = 3):
        super().__init__()
        self.gru = nn.GRU(1, hidden, layers, batch_first=True)
        self.fc = nn.Linear(hidden, 2)

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        """x: (batch, time, 1) → logits (batch, time, 2), class 0 = up, 1 = down."""
        out, _ = self.gru(x, h)
        return self.fc(out)


@dataclass(frozen=True)
class Scaling:
    """x_model = (price_change - center) / scale; Scaling(0, 1) feeds the raw feature."""

    center: float = 0.0
    scale: float = 1.0

    def apply(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=np.float64) - self.center) / self.scale


@torch.no_grad()
def window_p_up(
    model: Forecast,
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
    windows = np.lib.stride_tricks.sliding_window_view(x, seq_len)  # windows[s] = x[s:s+L]
    model = model.to(device).eval()
    out = np.empty(len(ends), dtype=np.float64)
    for i in range(0, len(ends), batch):
        block = windows[ends[i : i + batch] - seq_len + 1]
        xb = torch.from_numpy(np.ascontiguousarray(block)).to(device).unsqueeze(-1)
        hidden, _ = model.gru(xb)
        logits = model.fc(hidden[:, -1])
        out[i : i + batch] = torch.softmax(logits.double(), dim=-1)[:, 0].cpu().numpy()
    return out
