"""Weight averaging (EMA): validation, early stopping and the saved files see the averaged weights."""

import json

import numpy as np
import pandas as pd
from train_helpers import cnn_config, interrupted_after_first_epoch

from aidentify.train.data import load_training_input, make_dataset
from aidentify.train.device import seed_everything
from aidentify.train.fit import _build, averaged_weights_swap, train


def _distance(weights, others):
    return sum(float(np.abs(np.asarray(a) - np.asarray(b)).sum()) for a, b in zip(weights, others))


def test_an_averaged_run_validates_and_saves_the_average_not_the_last_step(tiny_data, tmp_path):
    import keras

    plain = cnn_config(tiny_data, tmp_path, epochs=2, name="plain")
    averaged = cnn_config(tiny_data, tmp_path, epochs=2, name="ema", ema={"enabled": True, "momentum": 0.99})
    seed_everything(plain.seed)
    start = _build(plain, 3).trainable_weights  # both runs start here: same seed, same build
    plain_run, ema_run = train(plain).run_dir, train(averaged).run_dir

    plain_best = keras.models.load_model(plain_run / "weights" / "best.keras")
    ema_best = keras.models.load_model(ema_run / "weights" / "best.keras")
    # A 0.99 average over a few dozen steps stays near the start; the last step has moved on.
    # (BatchNorm's statistics are running averages already and are not averaged again.)
    assert _distance(ema_best.trainable_weights, start) < 0.5 * _distance(plain_best.trainable_weights, start)

    data = load_training_input(averaged.data_dir, averaged.labels, None, averaged.seed)
    val = make_dataset(data.val.paths, data.val.targets, averaged.image_size, averaged.batch_size)
    logged = pd.read_csv(ema_run / "results.csv")
    best_epoch = json.loads((ema_run / "run.json").read_text())["best"]["epoch"]
    # The logged validation loss is the saved (averaged) model's, so picking the best epoch judged the average.
    assert np.isclose(ema_best.evaluate(val, verbose=0, return_dict=True)["loss"], logged["val_loss"][best_epoch - 1], rtol=1e-4)


def test_a_resumed_averaged_run_trains_on_from_the_raw_weights(tiny_data, tmp_path):
    import keras

    config = cnn_config(tiny_data, tmp_path, epochs=2, ema={"enabled": True, "momentum": 0.9})
    run = interrupted_after_first_epoch(config)
    state = json.loads((run / "weights" / "state.json").read_text())
    assert state["ema_weights_in_model"] is True  # last.keras holds the average in the model

    model = keras.models.load_model(run / "weights" / "last.keras", compile=True)
    average = [keras.ops.convert_to_numpy(v) for v in model.trainable_weights]
    raw = [keras.ops.convert_to_numpy(v) for v in model.optimizer._model_variables_moving_average]
    assert _distance(average, raw) > 0  # the check can fail
    swap = averaged_weights_swap(state)
    swap.set_model(model)
    swap.on_epoch_begin(1)  # what the resumed run does before its first step
    assert _distance([keras.ops.convert_to_numpy(v) for v in model.trainable_weights], raw) == 0
    assert state["ema_weights_in_model"] is False

    result = train(config, resume=run)
    assert result.epochs_run == 2
    assert json.loads((run / "weights" / "state.json").read_text())["ema_weights_in_model"] is True
