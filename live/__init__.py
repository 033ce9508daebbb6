"""The live paper-trading service: exchange source, scheduler, ONNX predictor, journal. No torch."""
