"""One trained model package and one fitted world per test session: training is the slow part."""

from __future__ import annotations

from pathlib import Path

import pytest

from openice.simulation.platform import train_demo_model
from openice.simulation.population import World


@pytest.fixture(scope="session")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_demo_model(tmp_path_factory.mktemp("sim") / "model", rows=3000)


@pytest.fixture(scope="session")
def world() -> World:
    return World.fit()
