"""Fixtures for the live tests."""

import pytest


@pytest.fixture(scope="session")
def tiny_keras_model(tiny_data, tmp_path_factory):
    """A tiny CNN trained for one epoch on the generated data (a real .keras file with metadata)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent.parent / "train"))
    from train_helpers import cnn_config

    from aidentify.train.fit import train

    result = train(cnn_config(tiny_data, tmp_path_factory.mktemp("live-model"), epochs=2))
    return result.run_dir / "weights" / "best.keras"
