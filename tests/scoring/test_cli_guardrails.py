"""The guardrails as a user meets them: `openice model train` and `score` run as a subprocess, stdout, stderr and
exit code checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

DATA = Path(__file__).parents[2] / "openice" / "datasets" / "data" / "credit_data.csv"


def _openice(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    return subprocess.run([sys.executable, "-m", "openice", *args], capture_output=True, text=True, env=env)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, subprocess.CompletedProcess[str]]:
    tmp = tmp_path_factory.mktemp("cli")
    raw = pd.read_csv(DATA).sample(700, random_state=4).reset_index(drop=True)
    raw.insert(0, "application_id", np.random.default_rng(0).permutation(len(raw)) + 5000)
    data = tmp / "loans.csv"
    raw.to_csv(data, index=False)
    pkg = tmp / "pkg"
    args = ["--target", "Status", "--bad", "bad", "--inner-folds", "2", "--no-refit"]
    done = _openice("model", "train", "--data", str(data), "--out", str(pkg), *args)
    return data, pkg, done


def test_train_warns_of_an_identifier_on_stderr_and_leaves_it_out(trained) -> None:
    _, pkg, done = trained
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning:")]  # progress is on stderr too
    assert len(warnings) == 1 and warnings[0].startswith("warning: application_id: identifier: ")
    assert "--allow application_id" in warnings[0]
    assert "oof: AUC" in done.stdout and "fitted on the 560 training rows (no refit)" in done.stdout
    meta = json.loads((pkg / "metadata.json").read_text())
    assert "application_id" not in {f["name"] for f in meta["features"]}
    assert [f["column"] for f in meta["screening"]] == ["application_id"]


def test_allow_names_a_column_of_the_data(trained, tmp_path: Path) -> None:
    data, _, _ = trained
    args = ["--target", "Status", "--bad", "bad", "--allow", "applicant"]
    done = _openice("model", "train", "--data", str(data), "--out", str(tmp_path / "p"), *args)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == "error: --allow: no such columns: ['applicant']\n"


def test_score_warns_once_of_absent_feature_columns_and_strict_refuses(trained, tmp_path: Path) -> None:
    data, pkg, _ = trained
    partial = tmp_path / "partial.csv"
    pd.read_csv(data).drop(columns=["Income", "Assets"]).to_csv(partial, index=False)
    out = tmp_path / "scored.csv"
    done = _openice("model", "score", str(pkg), "--input", str(partial), "--output", str(out))
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "2 of 13 feature columns are absent" in warnings[0]
    assert "Income, Assets" in done.stderr
    scored = pd.read_csv(out)
    assert scored["flags"].str.contains("missing:Income").all()
    strict = _openice("model", "score", str(pkg), "--input", str(partial), "--output", str(out), "--strict")
    assert strict.returncode == 2 and strict.stdout == ""
    assert strict.stderr == f"error: {partial}: lacks the feature columns Income, Assets\n"


def test_score_keeps_integer_columns_integers(trained, tmp_path: Path) -> None:
    data, pkg, _ = trained
    out = tmp_path / "scored.csv"
    done = _openice("model", "score", str(pkg), "--input", str(data), "--output", str(out))
    assert done.returncode == 0 and "warning" not in done.stderr
    lines = out.read_text().splitlines()
    header, first = lines[0].split(","), lines[1].split(",")
    source = pd.read_csv(data)
    for name in ("application_id", "Seniority", "Age", "Amount"):
        assert first[header.index(name)] == str(source[name].iloc[0])
