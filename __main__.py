"""`python -m fc`: the same program as the console scripts `fc` and `fcast`."""

from fc.cli.main import run

run()
