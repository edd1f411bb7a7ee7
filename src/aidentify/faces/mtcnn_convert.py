"""MTCNN's three networks converted to LiteRT flatbuffers: how the shipped files were made.

The ``mtcnn`` package (1.0.0, MIT, Iván de Paz Centeno) ships the P-, R- and
O-Net weights of Zhang et al. (2016) as joblib/lz4 lists of numpy arrays in
``mtcnn/assets/weights/{pnet,rnet,onet}.lz4`` and runs them on TensorFlow.
:func:`convert_network` builds the package's own Keras networks, loads those
weights and converts them with ``TFLiteConverter``. ``scripts/ship_detectors.py``
runs it (in the full install: TensorFlow and ``mtcnn`` come with the ``train``
extra) and writes the results into ``aidentify/assets/detectors/mtcnn/``, which
is all the detector reads at run time: no TensorFlow, no ``mtcnn`` package.

Network inputs are ``float32`` NHWC RGB images scaled ``(x - 127.5) / 128``;
P-Net takes any height and width (``-1`` in the flatbuffer: resize the input
tensor per pyramid level), R-Net ``(N, 24, 24, 3)`` and O-Net ``(N, 48, 48, 3)``
with any batch ``N``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
from pathlib import Path

from aidentify.errors import ExtraMissing
from aidentify.extras import EXTRA_MODULES

NETWORKS = ("pnet", "rnet", "onet")
# Input shape each network is converted with (None = any size, resized at run time).
INPUT_SHAPES = {"pnet": (None, None, None, 3), "rnet": (None, 24, 24, 3), "onet": (None, 48, 48, 3)}
FORMAT = "litert-float32-v1"  # how the conversion is done; recorded in the shipped files' provenance
WEIGHTS_FOLDER = "mtcnn/assets/weights"  # inside the mtcnn wheel


def weight_files() -> dict[str, Path]:
    """``{"pnet": path, "rnet": path, "onet": path}``: the installed ``mtcnn`` package's ``.lz4`` weights.

    Found from the package's import spec without importing it (that imports
    TensorFlow). Raises ``ExtraMissing`` when the package is not installed.
    """
    spec = importlib.util.find_spec("mtcnn")
    if spec is None or not spec.submodule_search_locations:
        raise ExtraMissing(*EXTRA_MODULES["mtcnn"])
    folder = Path(list(spec.submodule_search_locations)[0]) / "assets" / "weights"
    return {name: folder / f"{name}.lz4" for name in NETWORKS}


def build_network(name: str, weights_path: Path):
    """The ``mtcnn`` package's Keras network ``name`` with the weights at ``weights_path``.

    Imports TensorFlow; raises ``ExtraMissing`` without the ``train`` extra.
    """
    import joblib  # scikit-learn's dependency: in every install

    from aidentify.extras import import_extra
    from aidentify.native_logs import import_tensorflow

    import_tensorflow()
    networks = {"pnet": "PNet", "rnet": "RNet", "onet": "ONet"}
    model = getattr(import_extra(f"mtcnn.network.{name}"), networks[name])()
    model.build()
    model.set_weights(joblib.load(weights_path))
    return model


def convert_network(name: str, weights_path: Path) -> bytes:
    """One network as a float32 ``.tflite`` flatbuffer, input shape :data:`INPUT_SHAPES` ``[name]``.

    Wrapped in a functional Keras model on an input of that shape, so P-Net
    keeps a free height and width and R-/O-Net a free batch size.
    """
    from aidentify.native_logs import import_tensorflow

    tf = import_tensorflow()
    network = build_network(name, weights_path)
    image = tf.keras.Input(batch_shape=INPUT_SHAPES[name], name="image")
    model = tf.keras.Model(image, network(image))
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    with contextlib.redirect_stdout(io.StringIO()):  # the converter prints its signature
        return converter.convert()
