"""Config builders and helpers for the training tests: tiny models, one epoch, no TensorBoard."""

import pytest

from aidentify.config import CnnTrainConfig, DenseNetTrainConfig
from aidentify.train.fit import TrainEvents, TrainingInterrupted, train

TINY_CNN = {"filters": [8, 16], "convs_per_block": 1, "dense_units": 16}


def cnn_config(data, tmp_path, epochs=1, **extra):
    extra.setdefault("cnn", TINY_CNN)
    return CnnTrainConfig(data_dir=data / "augmented", project=tmp_path / "runs", image_size=32,
                          epochs=epochs, batch_size=16, tensorboard=epochs == 1 and len(extra) == 1, **extra)


def densenet_config(data, tmp_path):
    return DenseNetTrainConfig(data_dir=data / "augmented", project=tmp_path / "runs", image_size=32,
                               epochs=1, batch_size=16, max_samples=48, tensorboard=False,
                               densenet={"weights": None, "head_units": 16,
                                         "fine_tune": {"epochs": 1, "unfreeze_layers": 20}})


def interrupted_after_first_epoch(config):
    """Train ``config`` and press Ctrl-C at the end of epoch 1; the run folder it leaves to resume."""

    def stop(info):
        raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted) as stopped:
        train(config, TrainEvents(epoch=stop))
    return stopped.value.run_dir
