"""Trainable Keras weights from an AIdentify CNN exported to ``.tflite``.

A shipped model exists only as TFLite (the package carries no ``.keras``), so
fine-tuning it, on new data or for one more training cycle, needs its weights
back. The exporter changed them on the way out, and this module undoes that:

- each BatchNormalization was folded into the convolution or dense layer
  before it (a scaled kernel plus a bias);
- the input scaling (``Rescaling(1/255)``) was folded into the first
  convolution;
- ``int8`` exports keep their kernels as int8 with one scale per output
  channel.

Folding loses the BatchNorm statistics, but inference does not need them:
:func:`load_tflite_weights` gives every BatchNorm layer the mean and variance
that its input actually has on a sample of training images and chooses gamma
and beta so that the layer still computes exactly "folded output plus bias".
With real statistics, a training step (which normalises with the batch's own
statistics) starts from the same function as inference instead of from a
scrambled one. The rebuilt model is then checked against the TFLite
interpreter on those images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aidentify.errors import ConfigError

# The rebuilt Keras model and the TFLite file must agree this closely on every
# probability. int8 exports quantise activations on the fly: for the default
# model the largest difference was 0.017 on 1,024 training images (0.04 over
# FER+ Valid); a wrong mapping moves probabilities by tenths.
MAX_PROBABILITY_DIFFERENCE = 0.1


@dataclass
class FoldedLayer:
    """One convolution or dense layer as the exporter left it, in Keras layout."""

    kernel: np.ndarray  # Conv2D: (kh, kw, in, out); Dense: (in, out)
    bias: np.ndarray | None


def _tensor_values(model: Any, tensor: Any) -> np.ndarray:
    """A constant tensor of the flatbuffer as float32, dequantised when it is int8."""
    from ai_edge_litert import schema_py_generated as schema

    raw = model.buffers[tensor.buffer].data
    if raw is None:
        raise ConfigError("the .tflite file has a weight tensor without data; export it again")
    if tensor.type == schema.TensorType.FLOAT32:
        return np.frombuffer(raw.tobytes(), dtype=np.float32).reshape(tensor.shape).copy()
    if tensor.type != schema.TensorType.INT8:
        raise ConfigError(f"cannot read weights of TFLite type {tensor.type}; "
                          "only float32 and int8 exports can seed training")
    values = np.frombuffer(raw.tobytes(), dtype=np.int8).reshape(tensor.shape).astype(np.float32)
    quant = tensor.quantization
    scales = np.asarray(quant.scale, dtype=np.float32)
    zero_points = np.asarray(quant.zeroPoint if quant.zeroPoint is not None else [0], dtype=np.float32)
    shape = [1] * values.ndim
    if scales.size > 1:
        shape[quant.quantizedDimension] = scales.size
    return (values - zero_points.reshape(shape)) * scales.reshape(shape)


def read_folded_layers(path: Path) -> list[FoldedLayer]:
    """The kernels and biases of every CONV_2D and FULLY_CONNECTED op, in graph order."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(Path(path).read_bytes()), 0)
    graph = model.subgraphs[0]
    layers = []
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        kind = max(code.builtinCode, code.deprecatedBuiltinCode)
        if kind not in (schema.BuiltinOperator.CONV_2D, schema.BuiltinOperator.FULLY_CONNECTED):
            continue
        kernel = _tensor_values(model, graph.tensors[op.inputs[1]])
        bias = _tensor_values(model, graph.tensors[op.inputs[2]]) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
        if kind == schema.BuiltinOperator.CONV_2D:
            kernel = kernel.transpose(1, 2, 3, 0)  # TFLite (out, kh, kw, in) -> Keras (kh, kw, in, out)
        else:
            kernel = kernel.T  # TFLite (out, in) -> Keras (in, out)
        layers.append(FoldedLayer(kernel, bias))
    return layers


def _weighted_layers(model: Any) -> list[tuple[Any, Any | None]]:
    """(conv or dense layer, the BatchNormalization after it or None), in model order."""
    import keras

    branched = [layer for layer in model.layers if isinstance(layer, (keras.layers.Add, keras.layers.Multiply))]
    if branched:  # shortcuts and gates: the file's layer order no longer follows one chain
        raise _not_plain(branched[0])
    pairs: list[tuple[Any, Any | None]] = []
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            pairs.append((layer, None))
        elif isinstance(layer, keras.layers.BatchNormalization):
            if not pairs or pairs[-1][1] is not None:
                raise ConfigError(f"cannot unfold BatchNormalization {layer.name!r}: it does not follow "
                                  "a convolution or dense layer")
            pairs[-1] = (pairs[-1][0], layer)
        elif layer.weights and not isinstance(layer, keras.layers.Rescaling):
            raise _not_plain(layer)
    return pairs


def _not_plain(layer: Any) -> ConfigError:
    return ConfigError(f"cannot rebuild layer {layer.name!r} ({type(layer).__name__}) from a .tflite file; "
                       "only the plain custom CNN (cnn.block plain, no separable or squeeze_excite) can "
                       "start from one; give the run folder or .keras model instead")


def _input_scale(model: Any) -> float:
    """The factor of the Rescaling layer the exporter folded into the first convolution (1 if none)."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.Rescaling):
            return float(layer.scale)
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            break
    return 1.0


def _set_folded(model: Any, pairs: list[tuple[Any, Any | None]], folded: list[FoldedLayer], source: Path) -> None:
    """Put the folded kernels in place, each BatchNorm set to add the folded bias and nothing else."""
    if len(folded) != len(pairs):
        raise ConfigError(f"{source} has {len(folded)} convolution and dense layers, this "
                          f"architecture {len(pairs)}; use the cnn settings of the model it came from")
    scale = _input_scale(model)
    for index, ((layer, norm), item) in enumerate(zip(pairs, folded)):
        kernel = item.kernel / scale if index == 0 else item.kernel
        expected = tuple(layer.kernel.shape)
        if kernel.shape != expected:
            raise ConfigError(f"{source} does not match this architecture at layer {layer.name!r} "
                              f"(kernel {kernel.shape}, expected {expected}); use the cnn settings of the "
                              "model it came from")
        bias = item.bias if item.bias is not None else np.zeros(expected[-1], np.float32)
        if norm is None:
            layer.set_weights([kernel, bias] if layer.use_bias else [kernel])
            continue
        layer.set_weights([kernel])
        # gamma 1, beta = bias, mean 0 and variance 1 - epsilon: y = x + bias exactly.
        ones = np.ones_like(bias)
        norm.set_weights([ones, bias, np.zeros_like(bias), ones - norm.epsilon])


def _calibrate_batch_norms(model: Any, pairs: list[tuple[Any, Any | None]], images: np.ndarray) -> None:
    """Give each BatchNorm the statistics of its input on ``images``, keeping what it computes."""
    import keras

    norms = [norm for _, norm in pairs if norm is not None]
    probe = keras.Model(model.inputs, [layer.output for layer, norm in pairs if norm is not None])
    outputs = probe.predict(images, batch_size=64, verbose=0)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    for norm, activations in zip(norms, outputs):
        flat = activations.reshape(-1, activations.shape[-1]).astype(np.float64)
        mean, variance = flat.mean(axis=0), flat.var(axis=0)
        _, bias, _, _ = norm.get_weights()
        # y = gamma * (x - mean) / sqrt(variance + eps) + beta = x + bias
        gamma = np.sqrt(variance + norm.epsilon)
        norm.set_weights([gamma.astype(np.float32), (bias + mean).astype(np.float32),
                          mean.astype(np.float32), variance.astype(np.float32)])


def load_tflite_weights(model: Any, source: Path, images: np.ndarray) -> float:
    """Fill the freshly built CNN ``model`` with the weights of the exported ``source``.

    ``images`` (uint8, N x size x size x 1, a few hundred training crops) set
    the BatchNorm statistics and check the result. Returns the largest
    difference in any probability between the rebuilt model and ``source``.
    """
    from aidentify.inference.classify import load_classifier

    pairs = _weighted_layers(model)
    _set_folded(model, pairs, read_folded_layers(source), source)
    _calibrate_batch_norms(model, pairs, images)
    rebuilt = model.predict(images, batch_size=64, verbose=0)
    difference = float(np.abs(rebuilt - load_classifier(source, backend="litert")(images)).max())
    if difference > MAX_PROBABILITY_DIFFERENCE:
        raise ConfigError(f"{source}: the rebuilt model disagrees with the .tflite file by "
                          f"{difference:.3f} in probability; it was not exported from this architecture")
    return difference
