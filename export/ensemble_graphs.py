"""An Ensemble (core.model: members and/or a temperature) as the window and step graphs.

Same inputs and outputs as export/graphs.py's WindowGraph and StepGraph: every member reads the
same scaled input, the graph averages their probabilities in float64 and outputs
logits = log(mean p) / T, whose softmax is the ensemble's p (Ensemble.probabilities). The step
graph carries the members' states side by side: hidden is (layers, batch, members * hidden),
member k's state in hidden[:, :, k * hidden : (k + 1) * hidden].
"""

import torch
from torch import nn

from fc.core.learning.model import Ensemble, Scaling
from fc.export.graph_input import input_scale, scaled


class EnsembleHead(nn.Module):
    """The members' last-step logits → log of their mean probability (float64) / T, cast to
    float32: Ensemble.probabilities as graph ops."""

    def __init__(self, ensemble: Ensemble):
        super().__init__()
        self.members = ensemble.members
        self.temperature = ensemble.temperature

    def logits(self, outs: list[torch.Tensor]) -> torch.Tensor:
        total = 0.0
        for member, out in zip(self.members, outs, strict=True):
            total = total + torch.softmax(member.fc(out[:, -1]).double(), dim=-1)
        return (torch.log(total / len(outs)) / self.temperature).float()


class EnsembleWindowGraph(EnsembleHead):
    """WindowGraph for an Ensemble: same input and outputs, members side by side."""

    def __init__(self, ensemble: Ensemble, scaling: Scaling):
        super().__init__(ensemble)
        self.center, self.scale = input_scale(scaling)

    def forward(self, price_change: torch.Tensor):
        x = scaled(price_change, self.center, self.scale)
        logits = self.logits([member.gru(x)[0] for member in self.members])
        return logits, torch.softmax(logits, dim=-1)


class EnsembleStepGraph(EnsembleHead):
    """StepGraph for an Ensemble: hidden (layers, batch, members * hidden), states side by side."""

    def __init__(self, ensemble: Ensemble, scaling: Scaling):
        super().__init__(ensemble)
        self.center, self.scale = input_scale(scaling)
        self.hidden = ensemble.members[0].gru.hidden_size

    def forward(self, price_change: torch.Tensor, hidden: torch.Tensor):
        x = scaled(price_change, self.center, self.scale)
        outs, states_out = [], []
        for member, h in zip(self.members, torch.split(hidden, self.hidden, dim=2), strict=True):
            out, h_out = member.gru(x, h)
            outs.append(out)
            states_out.append(h_out)
        return self.logits(outs), torch.cat(states_out, dim=2)
