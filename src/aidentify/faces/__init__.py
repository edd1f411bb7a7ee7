"""Face detection and the one face-crop path.

Detectors (Haar, BlazeFace, MTCNN) sit behind one interface
(:class:`aidentify.faces.detector.FaceDetector`); :mod:`aidentify.faces.crop`
cuts the square, margin-padded crops that ``prepare``, ``evaluate``, ``live``
and ``serve`` all feed to a model. Nothing here imports TensorFlow.
"""
