"""A small model package trained once per test worker: credit_data sample, two inner folds, few rounds."""

from __future__ import annotations

from pathlib import Path

import pytest

from openice.datasets import load
from openice.scoring.loaded_model import Scorer
from openice.scoring.model import TrainConfig
from openice.scoring.train import train_package

SMALL = TrainConfig(inner_folds=2, max_rounds=60, learning_rate=0.1, threads=1)


@pytest.fixture(scope="session")
def credit():
    return load("credit_data")


@pytest.fixture(scope="session")
def package(tmp_path_factory: pytest.TempPathFactory, credit) -> Path:
    out = tmp_path_factory.mktemp("pkg") / "credit"
    sample = credit.frame.sample(1500, random_state=1)
    train_package(sample, credit.target.loc[sample.index], out, cfg=SMALL, test_size=0.25)
    return out


@pytest.fixture(scope="session")
def scorer(package: Path) -> Scorer:
    return Scorer.load(package)


@pytest.fixture(scope="session")
def special_scorer(tmp_path_factory: pytest.TempPathFactory, credit) -> Scorer:
    """The same sample with no assets (Assets = 0) declared a special code: it gets its own bin."""
    out = tmp_path_factory.mktemp("pkg") / "special"
    sample = credit.frame.sample(1500, random_state=1)
    cfg = TrainConfig(**{**SMALL.__dict__, "special": {"Assets": [0.0]}})
    train_package(sample, credit.target.loc[sample.index], out, cfg=cfg, test_size=0)
    return Scorer.load(out)
