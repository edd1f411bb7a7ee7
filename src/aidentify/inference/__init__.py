"""Model files, their metadata, and batched emotion classification of face crops.

Used by ``evaluate``, ``export``, ``distill``, ``live`` and ``serve``: data
flows one way, data and faces below, this package, then train / live / serve
above. TensorFlow is imported only inside the functions that need it (Keras
models, conversion); a ``.tflite`` model runs on LiteRT alone.
"""
