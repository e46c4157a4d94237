"""Running a trained policy: decode engines (torch, ONNX Runtime), engine choice, export and
parity."""
