"""Where and how training computes: strategy, precision, seeds.

These are the process-wide TensorFlow settings a run makes before it builds
a model: the distribution strategy (one device, mirrored over GPUs or CPUs,
or multi-worker), the global mixed-precision policy, and the random seeds
that make a run reproducible and a resumed run draw fresh batches. They
change global state, so they live apart from the training loop, which only
calls them in order. TensorFlow is imported inside each function.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from aidentify.data.images import worker_count
from aidentify.errors import ConfigError


def seed_everything(seed: int) -> None:
    """Same seed and config give the same split, the same batches and, on CPU, the same metrics."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def random_stream_seed(seed: int, resumes: int, epochs_done: int) -> int:
    """The seed for this process's shuffling, augmentation and dropout draws.

    A fresh run uses the configured seed. A resumed run must not: every random
    stream would restart where epoch 1 started, so the resumed epochs would replay
    epoch 1's exact batches, augmented images and dropout masks, which the model
    has already fitted. On the default model's third stage the replayed batches
    scored 0.88 training accuracy against 0.85 for fresh ones, and the resumed
    epochs trained on less variety. Each resume therefore gets its own seed,
    derived from the configured one, so it is still reproducible.
    """
    if resumes == 0:
        return seed
    import numpy as np

    return int(np.random.SeedSequence([seed, resumes, epochs_done]).generate_state(1)[0] >> 1)


def reseed_random_layers(model: Any, seed: int) -> None:
    """Give every random layer of a loaded model (augmentation, dropout) a new stream.

    A ``.keras`` file stores each augmentation layer's configured seed but not how
    far its generator had run, so a loaded model would draw epoch 1's augmentations again.
    """
    import keras
    import numpy as np

    generators = list({id(value): value for layer in _all_layers(model) for value in vars(layer).values()
                       if isinstance(value, keras.random.SeedGenerator)}.values())
    for generator, start in zip(generators, np.random.SeedSequence(seed).generate_state(len(generators))):
        generator.state.assign(np.array([start, 0], dtype=generator.state.dtype))


def _all_layers(model: Any) -> Iterator[Any]:
    """The layers of ``model``, including those inside nested models (DenseNet's base)."""
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def make_strategy(kind: str) -> Any:
    """``auto``: MirroredStrategy over several GPUs, else the default strategy.

    ``mirrored`` mirrors over all GPUs, or over all logical CPUs when there is
    no GPU (how the tests exercise it). ``multi_worker`` reads the cluster
    from the ``TF_CONFIG`` environment variable (see :func:`worker_role`). It
    must be made before TensorFlow runs anything (even listing devices starts
    the runtime, and collective ops cannot be set up after that), so the
    training loop makes the strategy first.
    """
    import tensorflow as tf

    if kind == "multi_worker":
        worker_role()  # TF_CONFIG is there and names this process
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if kind == "none" or (kind == "auto" and len(gpus) < 2):
        return tf.distribute.get_strategy()
    devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices=devices)


@dataclass(frozen=True)
class WorkerRole:
    """This process's place in a multi-worker cluster."""

    index: int  # among the cluster's trainers (chief first, then the workers)
    count: int  # trainers in the cluster
    chief: bool  # the one that writes the run folder


def worker_role() -> WorkerRole:
    """Read ``TF_CONFIG``: which trainer this process is, and whether it is the chief.

    The chief is the ``chief`` task when the cluster names one, else worker 0
    (TensorFlow's rule). Only the chief writes the run folder; the others train
    the same model in step with it and write their copies to a scratch folder.
    """
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise ConfigError("strategy multi_worker needs TF_CONFIG describing the cluster "
                          "(see docs/training.md, strategy multi_worker)")
    try:
        spec = json.loads(raw)
        cluster, task = spec["cluster"], spec["task"]
        kind, index = task["type"], int(task["index"])
        trainers = [(job, i) for job in ("chief", "worker") for i in range(len(cluster.get(job, [])))]
        return WorkerRole(trainers.index((kind, index)), len(trainers), trainers.index((kind, index)) == 0)
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ConfigError(f"TF_CONFIG does not describe this process as a chief or worker of its cluster "
                          f"({error!r}): {raw}") from None


def shard_across_workers(dataset: Any, strategy: Any) -> Any:
    """Under a multi-worker strategy, split the batches between the workers, not the files.

    Every worker builds the same pipeline from the same paths and seed, so all
    shuffle alike; each then takes its share of every global batch. (TensorFlow's
    default tries to split by input file, finds one list of paths, and falls back
    to this with a warning.) Other strategies get the dataset unchanged.
    """
    import tensorflow as tf

    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return dataset
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


@contextlib.contextmanager
def keras_fit_under(strategy: Any, model: Any) -> Iterator[None]:
    """Let Keras 3's ``fit`` train ``model`` under a multi-worker strategy, every worker alike.

    Each BatchNormalization computes its batch statistics over the global batch
    (``synchronized``), as one process training on the whole batch would. Left
    local, each worker's moving mean and variance follow its own share of the
    data, and the workers end with different models although their gradients agree.

    Keras 3.15's TensorFlow trainer fails under ``MultiWorkerMirroredStrategy``
    in two places (keras-team/keras#20585, open), so no multi-worker ``fit`` runs:

    - before the first step, ``fit`` and ``evaluate`` average one input batch over
      the replicas to build the metrics symbolically, and that strategy cannot
      reduce a nested ``(images, targets)`` batch ("Attempt to convert a value
      (PerReplica…) to a Tensor"). The build needs only shapes and types, so
      this model builds from this worker's own share of the batch instead;
    - after every step, it averages the scalar losses and metrics over the
      replicas along axis 0, which scalars lack ("Invalid reduction dimension 0").
      Scalars are averaged over the replicas as they are; anything else takes
      Keras's own path.

    All of this holds only inside this block, and only for a multi-worker strategy;
    other strategies train exactly as Keras has it.
    """
    import tensorflow as tf

    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        yield
        return
    from keras.src.backend.tensorflow import trainer

    def local(value: Any) -> Any:
        return strategy.experimental_local_results(value)[0] if isinstance(value, tf.distribute.DistributedValues) \
            else value

    def build_from_local_batch(iterator: Any = None, data_batch: Any = None) -> None:
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = tf.nest.map_structure(local, next(batches))
                break
        with strategy.scope():
            model._symbolic_build(data_batch=data_batch)

    keras_reduce = trainer.reduce_per_replica

    def reduce_scalars_too(values: Any, used: Any, reduction: str) -> Any:
        if used is not strategy or reduction not in ("auto", "mean"):
            return keras_reduce(values, used, reduction)
        return tf.nest.map_structure(
            lambda v: strategy.reduce("MEAN", v, axis=0 if local(v).shape.rank else None), values)

    import keras

    batch_norms = [layer for layer in _all_layers(model)
                   if isinstance(layer, keras.layers.BatchNormalization) and not layer.synchronized]
    for layer in batch_norms:
        layer.synchronized = True
    model._maybe_symbolic_build = build_from_local_batch
    trainer.reduce_per_replica = reduce_scalars_too
    try:
        yield
    finally:
        trainer.reduce_per_replica = keras_reduce
        del model._maybe_symbolic_build
        for layer in batch_norms:
            layer.synchronized = False


def device_summary(strategy: Any, policy: str) -> str:
    """One line on where training runs, and in what precision when it is not float32.

    Without a usable GPU, TensorFlow's own notice (a failed ``cuInit``) is
    filtered out at the default log level, so this line says it plainly and
    how to see TensorFlow's reasons.
    """
    import tensorflow as tf

    gpus = len(tf.config.list_physical_devices("GPU"))
    replicas = strategy.num_replicas_in_sync
    spread = f", {replicas} replicas ({type(strategy).__name__})" if replicas > 1 else ""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        role = worker_role()
        spread += f", worker {role.index} of {role.count}" + (" (chief)" if role.chief else "")
    precision = policy.replace("_", " ")  # "mixed bfloat16"
    if not gpus:
        return (f"device: CPU, {worker_count(0)} threads{spread}{'' if policy == 'float32' else ', ' + precision}"
                " (no GPU found; TF_CPP_MIN_LOG_LEVEL=0 shows TensorFlow's GPU messages)")
    return f"device: {gpus} GPU{'s' if gpus > 1 else ''}{spread}, {precision}"


# mixed_precision setting -> Keras policy; "auto" depends on the device (see use_mixed_precision)
PRECISION_POLICIES = {"off": "float32", "on": "mixed_float16", "bfloat16": "mixed_bfloat16"}


def use_mixed_precision(setting: str) -> str:
    """Set Keras's global precision policy from ``mixed_precision``; returns the policy's name.

    ``on``: float16 compute (float32 weights and softmax); ``bfloat16``: the same
    in bfloat16, which needs no loss scaling and pays on CPUs with bfloat16 units
    (``avx512_bf16``, AMX; see docs/training.md, "Training speed on CPU");
    ``off``: float32. ``auto`` is ``on`` with a GPU and ``off`` on a CPU: bfloat16
    trained the CNN faster on our AVX512-BF16 CPU, but its accuracy over a full
    training has not been measured, so a CPU run asks for it by name.
    """
    import keras
    import tensorflow as tf

    if setting == "auto":
        setting = "on" if tf.config.list_physical_devices("GPU") else "off"
    policy = PRECISION_POLICIES[setting]
    keras.mixed_precision.set_global_policy(policy)
    return policy
