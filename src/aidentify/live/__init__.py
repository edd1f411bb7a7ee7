"""Live overlay: capture, detect, classify, track, draw."""
