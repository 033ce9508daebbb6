"""Figures made from data (matplotlib, Agg); callers decide where the PNG goes."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def _smooth(values: pd.Series, span: int) -> pd.Series:
    return values.ewm(span=max(1, span), adjust=False).mean()


# the x axis of a history: the GRU's optimiser steps, LightGBM's boosting rounds, logistic's C
X_AXES = {"step": "optimiser step", "round": "boosting round", "c": "C (inverse L2 strength)"}


def loss_figure(history: pd.DataFrame, title: str = ""):
    """Smoothed train loss and validation loss over the same optimiser steps (the workshop's
    plot); history has columns step, train_loss, val_loss (NaN between validations). A tabular
    family's history has `round` or `c` instead of step and no train_loss."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    x = next((c for c in X_AXES if c in history), "step")
    if len(history) and "train_loss" in history:
        span = max(1, len(history) // 20)
        ax.plot(history[x], history["train_loss"], color="tab:blue", alpha=0.2, lw=0.8)
        label = "train" if span == 1 else f"train (EMA over {span} steps)"
        ax.plot(history[x], _smooth(history["train_loss"], span), color="tab:blue",
                label=label)  # fmt: skip
    if len(history):
        val = history.dropna(subset=["val_loss"])
        ax.plot(val[x], val["val_loss"], "o-", color="tab:orange", ms=3,
                label="validation")  # fmt: skip
        if len(val):
            best = val.loc[val["val_loss"].idxmin()]
            ax.plot(best[x], best["val_loss"], "*", color="tab:red", ms=12,
                    label="kept model")  # fmt: skip
    if x == "c":
        ax.set_xscale("log")
    ax.set_xlabel(X_AXES[x])
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def sweep_figure(curves: dict[str, pd.DataFrame], title: str = "fc sweep"):
    """Validation loss of each run over its epochs, one line per run; one panel per loss, since
    cross-entropy and -log growth live on different scales. Names start with the loss."""
    losses = sorted({name.split()[0] for name in curves})
    fig, axes = plt.subplots(1, len(losses), figsize=(8 * len(losses), 5), squeeze=False)
    for ax, loss in zip(axes[0], losses, strict=True):
        for name, history in curves.items():
            val = history.dropna(subset=["val_loss"])
            if name.split()[0] == loss and len(val):
                # runs differ in steps per epoch: put them on a common epoch axis
                epochs = val["step"] / max(1, history["step"].max()) * history["epoch"].max()
                ax.plot(epochs, val["val_loss"], "o-", ms=2, label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation loss" + (" (-mean log growth)" if loss == "profit" else " (CE)"))
        ax.set_title(f"{title}: {loss} loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
