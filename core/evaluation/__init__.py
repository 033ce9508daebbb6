"""What a user decides on: policies, backtests, metrics, significance, calibration, walk-forward."""
