"""`python -m fc`: the same program as the console scripts `fc` and `candlecast`."""

from fc.cli.main import run

run()
