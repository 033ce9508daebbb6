"""The policy-parameter options shared by `fc backtest` (grids), `fc export` and `fc paper`."""

from typing import Annotated

import typer

GRID = "one value; fc backtest also takes a comma-separated grid"
Band = Annotated[
    str | None,
    typer.Option(help=f"Discrete: no-trade band around p_up 0.5, in [0, 0.5); {GRID}."),
]
FlatInside = Annotated[
    bool, typer.Option("--flat-inside", help="Discrete: go flat inside the band (--inside flat).")
]
Inside = Annotated[
    str | None, typer.Option(help=f"Discrete, inside the band: keep (default) or flat; {GRID}.")
]
Rebalance = Annotated[
    str | None,
    typer.Option(help=f"Proportional: trade only when |target - held| > this, >= 0; {GRID}."),
]
Cap = Annotated[
    str | None, typer.Option(help=f"Both policies: |position| <= cap, in (0, 1]; {GRID}.")
]
MinHold = Annotated[
    str | None,
    typer.Option(help=f"Both policies: bars a position is kept once changed, >= 1; {GRID}."),
]

K = Annotated[
    str | None,
    typer.Option(
        "--k",
        help="Long-short of a multi-symbol run: long the k highest p_up, short the k lowest"
        " (at most half the symbols; default 1).",
    ),
]


def policy_texts(band, flat_inside, inside, rebalance, cap, min_hold, k=None) -> dict:
    """The options as text per parameter (None: not given), --flat-inside folded into --inside."""
    from fc.core.errors import FcError

    if flat_inside and inside is not None:
        raise FcError("give --flat-inside or --inside, not both")
    inside = "flat" if flat_inside else inside
    texts = {"band": band, "flat_inside": inside, "rebalance": rebalance, "cap": cap,
             "min_hold": min_hold}  # fmt: skip
    return texts if k is None else texts | {"k": k}
