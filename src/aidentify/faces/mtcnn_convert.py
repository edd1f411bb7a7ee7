"""MTCNN's three networks as LiteRT flatbuffers: found in the ``mtcnn`` wheel, converted once, cached.

The ``mtcnn`` package (1.0.0, MIT, Iván de Paz Centeno) ships the P-, R- and
O-Net weights of Zhang et al. (2016) as joblib/lz4 lists of numpy arrays in
``mtcnn/assets/weights/{pnet,rnet,onet}.lz4`` and runs them on TensorFlow.
Importing that package imports TensorFlow (5-10 s), so the detector never does:
:func:`weight_files` finds the files from the package's import spec without
executing it, and :func:`ensure_converted` builds the package's own Keras
networks, loads the weights and converts them with ``TFLiteConverter`` once.
The ``.tflite`` files go to ``$AIDENTIFY_CACHE/mtcnn/<key>/`` (else
``$XDG_CACHE_HOME/aidentify/mtcnn`` or ``~/.cache/aidentify/mtcnn``), where
``<key>`` is the SHA-256 of the three weight files plus :data:`FORMAT`, so a
changed wheel (or a changed conversion) converts again. Later runs only read
the files: no TensorFlow at run time.

Network inputs are ``float32`` NHWC RGB images scaled ``(x - 127.5) / 128``;
P-Net takes any height and width (``-1`` in the flatbuffer: resize the input
tensor per pyramid level), R-Net ``(N, 24, 24, 3)`` and O-Net ``(N, 48, 48, 3)``
with any batch ``N``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import os
import sys
from pathlib import Path

from aidentify.errors import DataError

NETWORKS = ("pnet", "rnet", "onet")
# Input shape each network is converted with (None = any size, resized at run time).
INPUT_SHAPES = {"pnet": (None, None, None, 3), "rnet": (None, 24, 24, 3), "onet": (None, 48, 48, 3)}
FORMAT = "litert-float32-v1"  # bump when the conversion changes, so caches convert again
CONVERT_SECONDS = 15  # a conversion on our 2-core machines: 7-10 s with TensorFlow warm, more when cold


def package_folder() -> Path:
    """The installed ``mtcnn`` package's folder, found without importing it (which imports TensorFlow).

    Raises ``DataError`` when the package is not installed.
    """
    spec = importlib.util.find_spec("mtcnn")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the mtcnn detector needs the mtcnn package's weights: pip install 'mtcnn==1.0.0'")
    return Path(list(spec.submodule_search_locations)[0])


def weight_files() -> dict[str, Path]:
    """``{"pnet": path, "rnet": path, "onet": path}``: the ``.lz4`` weight files the wheel ships.

    Raises ``DataError`` when one is missing (another mtcnn version, a broken install).
    """
    folder = package_folder() / "assets" / "weights"
    files = {name: folder / f"{name}.lz4" for name in NETWORKS}
    missing = [str(path) for path in files.values() if not path.is_file()]
    if missing:
        raise DataError(f"the mtcnn package has no weight file {missing[0]}; "
                        "reinstall it: pip install --force-reinstall 'mtcnn==1.0.0'")
    return files


def weights_key(files: dict[str, Path]) -> str:
    """SHA-256 (hex) over the weight files' bytes, in :data:`NETWORKS` order, and :data:`FORMAT`."""
    digest = hashlib.sha256(FORMAT.encode())
    for name in NETWORKS:
        digest.update(files[name].read_bytes())
    return digest.hexdigest()


def cache_root() -> Path:
    """The folder converted networks live under: ``$AIDENTIFY_CACHE/mtcnn`` or the user's cache."""
    if os.environ.get("AIDENTIFY_CACHE"):
        return Path(os.environ["AIDENTIFY_CACHE"]).expanduser() / "mtcnn"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "aidentify" / "mtcnn"


def converted_paths(folder: Path) -> dict[str, Path]:
    """Where each network's ``.tflite`` file is (or will be) inside a cache ``folder``."""
    return {name: folder / f"{name}.tflite" for name in NETWORKS}


def ensure_converted(root: Path | None = None) -> dict[str, Path]:
    """The three ``.tflite`` files for the installed weights, converting them first if not cached.

    ``root`` defaults to :func:`cache_root`. Converting imports TensorFlow and
    takes about :data:`CONVERT_SECONDS` s; it prints one line on stderr first.
    Each file is written under a temporary name and renamed into place, so an
    interrupted or concurrent conversion never leaves a partial file behind.
    Raises ``DataError`` when the weights are missing or the folder cannot be written.
    """
    files = weight_files()
    folder = Path(root or cache_root()) / weights_key(files)[:32]
    paths = converted_paths(folder)
    if all(path.is_file() for path in paths.values()):
        return paths
    print(f"converting MTCNN's networks to LiteRT once, into {folder} (about {CONVERT_SECONDS} s)",
          file=sys.stderr, flush=True)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, path in paths.items():
            if not path.is_file():
                write_atomically(path, convert_network(name, files[name]))
    except OSError as exc:
        raise DataError(f"could not write the converted MTCNN networks into {folder}: {exc}; "
                        "set AIDENTIFY_CACHE to a writable folder") from None
    return paths


def write_atomically(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path`` through a temporary file in the same folder and a rename."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_bytes(content)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def build_network(name: str, weights_path: Path):
    """The ``mtcnn`` package's Keras network ``name`` with the weights at ``weights_path`` (imports TensorFlow)."""
    import joblib

    from aidentify.native_logs import import_tensorflow

    import_tensorflow()
    from mtcnn.network.onet import ONet
    from mtcnn.network.pnet import PNet
    from mtcnn.network.rnet import RNet

    model = {"pnet": PNet, "rnet": RNet, "onet": ONet}[name]()
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


if __name__ == "__main__":  # `make install` converts once, so the first photo needs no TensorFlow
    for converted in ensure_converted().values():
        print(converted)
