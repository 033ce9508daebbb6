"""ONNX and TorchScript export of a run, with parity checks against torch."""
