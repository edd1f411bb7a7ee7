"""Training and evaluation (TensorFlow is imported lazily, inside functions)."""
