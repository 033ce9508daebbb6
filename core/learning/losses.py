"""The two training losses (SPEC §2): cross-entropy on the next direction, and the end-to-end
profit loss -mean log(1 + f R - c |f - f_prev|) with f = p_up - p_down.

Both take logits (batch, time, 2) and a bool mask (batch, time) of the steps that are scored, so
the window scheme (one scored step per row) and the sequence scheme (many) share them.
"""

import torch
import torch.nn.functional as F

LOSSES = ("ce", "profit")


def direction_ce(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the scored steps; labels are direction classes (0 up incl. ties)."""
    return F.cross_entropy(logits[mask], labels[mask])


def position_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """f = p_up - p_down, differentiable through the softmax."""
    p = torch.softmax(logits, dim=-1)
    return p[..., 0] - p[..., 1]


def profit_loss(
    logits: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor, cost: float = 0.0
) -> torch.Tensor:
    """-mean log(1 + f_t R_{t+1} - c |f_t - f_{t-1}|) over the scored steps.

    f_{t-1} is the model's previous output in the same row (a scored step is never a row's first
    step: it follows a burn-in), so the cost charges the position change the policy would pay."""
    f = position_from_logits(logits)
    growth = 1.0 + f * returns
    if cost:
        previous = torch.cat([f[:, :1], f[:, :-1]], dim=1)
        growth = growth - cost * (f - previous).abs()
    return -torch.log(growth[mask]).mean()


def training_loss(
    name: str,
    logits: torch.Tensor,
    labels: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    cost: float = 0.0,
) -> torch.Tensor:
    if name == "ce":
        return direction_ce(logits, labels, mask)
    if name == "profit":
        return profit_loss(logits, returns, mask, cost)
    raise ValueError(f"unknown loss {name!r}")
