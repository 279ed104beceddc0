"""Inference: load a model in any format, batched prediction, test-time augmentation, export."""
