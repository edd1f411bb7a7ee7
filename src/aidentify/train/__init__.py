"""Training and evaluation.

TensorFlow is imported inside functions, never at module import, so that
``aidentify --help`` and the data stages stay fast.
"""
