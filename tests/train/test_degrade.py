"""Webcam-like degradation of training faces (gamma, blur, low resolution, JPEG) in the input pipeline."""

import numpy as np
import pytest

from aidentify.config.train import Degrade
from aidentify.train.degrade import degrade_batches


def _faces(n: int = 64, side: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Sharp, high-contrast test faces: a checkerboard with a bright square, and one-hot targets."""
    yy, xx = np.mgrid[:side, :side]
    board = np.where((yy // 4 + xx // 4) % 2 == 0, 40, 200).astype(np.uint8)
    images = np.repeat(board[None, :, :, None], n, axis=0).copy()
    images[:, 8:16, 8:16, 0] = 255
    return images, np.eye(4, dtype=np.float32)[np.arange(n) % 4]


def _run(settings: Degrade, seed: int = 5, images=None, targets=None):
    import tensorflow as tf

    if images is None:
        images, targets = _faces()
    dataset = tf.data.Dataset.from_tensor_slices((images, targets)).batch(16)
    out = list(degrade_batches(dataset, settings, seed=seed).as_numpy_iterator())
    return np.concatenate([b[0] for b in out]), np.concatenate([b[1] for b in out])


def test_each_step_changes_faces_and_keeps_shape_dtype_and_targets():
    images, targets = _faces()
    for step in (dict(gamma=2.0, blur=0.0, downscale=1.0, jpeg=100),  # gamma only (JPEG at 100 is near lossless)
                 dict(gamma=1.0, blur=1.5, downscale=1.0, jpeg=100),
                 dict(gamma=1.0, blur=0.0, downscale=0.25, jpeg=100),
                 dict(gamma=1.0, blur=0.0, downscale=1.0, jpeg=5)):
        degraded, kept = _run(Degrade(share=1.0, **step), images=images, targets=targets)
        assert degraded.shape == images.shape and degraded.dtype == np.uint8
        assert np.array_equal(kept, targets)
        change = np.abs(degraded.astype(int) - images.astype(int)).mean(axis=(1, 2, 3))
        assert change.mean() > 3, step  # a real change, not rounding


def test_blur_and_low_resolution_remove_fine_detail():
    images, targets = _faces()
    sharp = np.abs(np.diff(images.astype(float), axis=2)).mean()
    for step in (dict(blur=2.0, downscale=1.0), dict(blur=0.0, downscale=0.25)):
        degraded, _ = _run(Degrade(share=1.0, gamma=1.0, jpeg=100, **step), images=images, targets=targets)
        assert np.abs(np.diff(degraded.astype(float), axis=2)).mean() < 0.8 * sharp, step


def test_share_sets_how_many_faces_change():
    images, targets = _faces(n=256)
    degraded, _ = _run(Degrade(share=0.3, gamma=2.0, blur=0.0, downscale=1.0, jpeg=100),
                       images=images, targets=targets)
    changed = (np.abs(degraded.astype(int) - images.astype(int)).max(axis=(1, 2, 3)) > 2).mean()
    assert 0.18 < changed < 0.42


def test_draws_reproduce_from_the_seed_and_differ_between_seeds():
    settings = Degrade(share=0.5)
    first, _ = _run(settings, seed=5)
    assert np.array_equal(first, _run(settings, seed=5)[0])
    assert not np.array_equal(first, _run(settings, seed=6)[0])


def test_settings_are_checked():
    with pytest.raises(ValueError):
        Degrade(share=1.5)
    with pytest.raises(ValueError):
        Degrade(downscale=0.0)


def test_a_run_with_degrade_trains_and_records_it(tiny_data, tmp_path):
    import json

    from train_helpers import cnn_config

    from aidentify.train.fit import train

    run = train(cnn_config(tiny_data, tmp_path, degrade={"share": 0.5})).run_dir
    assert "share: 0.5" in (run / "config.yaml").read_text()
    assert json.loads((run / "run.json").read_text())["status"] == "finished"
