"""Model packages: a directory of non-executable files (JSON and LightGBM's text model), a metadata file
and a manifest of SHA-256 hashes checked on every load; and a registry of versioned packages.

No pickle anywhere: a package can be read, diffed and audited as text, and loading it never runs code.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from openice.errors import Conflict, NotFound, ValidationError
from openice.scoring.features import FeatureSpec
from openice.scoring.model import Blend, Linear, Model, TrainConfig
from openice.scoring.scorecard import Scorecard

__all__ = [
    "FORMAT",
    "frame_hash",
    "load_model",
    "promote",
    "read_json",
    "register",
    "registry_champion",
    "registry_package",
    "registry_versions",
    "save_model",
]

FORMAT = "openice-model/1"
MANIFEST = "MANIFEST.json"
LIBRARIES = ("openice", "lightgbm", "scikit-learn", "optbinning", "numpy", "pandas")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def frame_hash(frame: pd.DataFrame, y: np.ndarray) -> str:
    """A stable hash of the training rows and labels, so a package says exactly what it learned from."""
    h = hashlib.sha256()
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    h.update(np.asarray(y, dtype=np.int8).tobytes())
    h.update(",".join(map(str, frame.columns)).encode())
    return h.hexdigest()


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for lib in LIBRARIES:
        try:
            out[lib] = importlib_metadata.version(lib)
        except importlib_metadata.PackageNotFoundError:
            out[lib] = "unknown"
    return out


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, sort_keys=True, allow_nan=False) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def save_model(model: Model, out: str | Path, *, extra: dict[str, Any], files: dict[str, Any]) -> str:
    """Write a package directory; ``extra`` goes into metadata.json, ``files`` are extra JSON files.

    Returns the package hash (SHA-256 over the manifest of file hashes).
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise Conflict(f"{out} exists and is not empty; choose a new directory", field="out")
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "scorecard.json", model.scorecard.to_json())
    _write_json(
        out / "linear.json",
        {"intercept": model.linear.intercept, "numeric": model.linear.numeric, "categorical": model.linear.categorical},
    )
    _write_json(out / "blend.json", asdict(model.blend))
    if model.booster is not None:
        (out / "lightgbm.txt").write_text(model.booster.model_to_string())
    for name, data in files.items():
        _write_json(out / name, data)
    meta = {
        "format": FORMAT,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "features": [s.to_json() for s in model.schema],
        "config": model.config_json(),
        "directions": model.directions,
        "selection": model.selection,
        "library_versions": _versions(),
        "champion": {"candidate": model.blend.candidate, "calibration": model.blend.calibration},
        **extra,
    }
    _write_json(out / "metadata.json", meta)
    hashes = {p.name: _sha256(p) for p in sorted(out.iterdir()) if p.name != MANIFEST}
    package_hash = hashlib.sha256(json.dumps(hashes, sort_keys=True).encode()).hexdigest()
    _write_json(out / MANIFEST, {"format": FORMAT, "files": hashes, "package_hash": package_hash})
    return package_hash


def verify(path: str | Path) -> str:
    """Check every file against the manifest; refuse a package that was changed, added to or truncated."""
    path = Path(path)
    if not (path / MANIFEST).is_file():
        raise NotFound(f"{path} is not a model package (no {MANIFEST})", field="package")
    manifest = read_json(path / MANIFEST)
    files = manifest.get("files", {})
    present = {p.name for p in path.iterdir() if p.is_file() and p.name != MANIFEST}
    if present != set(files):
        raise ValidationError(
            f"package files differ from the manifest: {sorted(present ^ set(files))}", field="package"
        )
    for name, digest in files.items():
        if _sha256(path / name) != digest:
            raise ValidationError(f"{name} does not match its hash: the package was modified", field="package")
    package_hash = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
    if package_hash != manifest.get("package_hash"):
        raise ValidationError("manifest hash mismatch: the package was modified", field="package")
    return package_hash


def load_model(path: str | Path) -> tuple[Model, dict[str, Any], str]:
    """Verify, then read a package into a Model; returns (model, metadata, package hash)."""
    path = Path(path)
    package_hash = verify(path)
    meta = read_json(path / "metadata.json")
    if meta.get("format") != FORMAT:
        raise ValidationError(f"unsupported package format {meta.get('format')!r}", field="package")
    schema = [FeatureSpec.from_json(d) for d in meta["features"]]
    cfg_d = dict(meta["config"])
    cfg_d["grades"] = tuple(tuple(g) for g in cfg_d["grades"])
    cfg_d["no_trend"] = tuple(cfg_d.get("no_trend", ()))
    cfg = TrainConfig(**cfg_d)
    booster = lgb.Booster(model_str=(path / "lightgbm.txt").read_text()) if (path / "lightgbm.txt").exists() else None
    lin = read_json(path / "linear.json")
    model = Model(
        schema,
        Scorecard.from_json(read_json(path / "scorecard.json"), schema),
        booster,
        Linear(lin["intercept"], lin["numeric"], lin["categorical"]),
        Blend(**read_json(path / "blend.json")),
        cfg,
        meta["directions"],
        meta["selection"],
    )
    return model, meta, package_hash


# --- registry -----------------------------------------------------------------------------------------


def _registry_file(registry: Path) -> Path:
    return registry / "registry.json"


def _read_registry(registry: Path) -> dict[str, Any]:
    f = _registry_file(registry)
    return read_json(f) if f.exists() else {"packages": [], "champion": None}


def register(package: str | Path, registry: str | Path, *, champion: bool = False) -> int:
    """Copy a verified package into the registry as the next version; the first version is champion."""
    registry = Path(registry)
    package_hash = verify(package)
    reg = _read_registry(registry)
    version = 1 + max((p["version"] for p in reg["packages"]), default=0)
    dest = registry / f"v{version:04d}"
    shutil.copytree(package, dest)
    meta = read_json(dest / "metadata.json")
    reg["packages"].append(
        {
            "version": version,
            "path": dest.name,
            "package_hash": package_hash,
            "created_at": meta["created_at"],
            "metrics": meta.get("metrics", {}).get("oof", {}),
        }
    )
    if champion or reg["champion"] is None:
        reg["champion"] = version
    registry.mkdir(parents=True, exist_ok=True)
    _write_json(_registry_file(registry), reg)
    return version


def promote(registry: str | Path, version: int) -> None:
    """Mark one registered version as the champion."""
    registry = Path(registry)
    reg = _read_registry(registry)
    if version not in {p["version"] for p in reg["packages"]}:
        raise NotFound(f"version {version} is not in the registry", field="version")
    reg["champion"] = version
    _write_json(_registry_file(registry), reg)


def registry_package(registry: str | Path, version: int | None = None) -> tuple[Path, dict[str, Any]]:
    """Path and registry entry of one registered version, the champion when `version` is None."""
    registry = Path(registry)
    reg = _read_registry(registry)
    wanted = reg["champion"] if version is None else version
    entry = next((p for p in reg["packages"] if p["version"] == wanted), None)
    if entry is None:
        missing = f"no champion in registry {registry}" if version is None else f"version {version} is not registered"
        raise NotFound(missing, field="registry" if version is None else "version")
    return registry / entry["path"], entry


def registry_champion(registry: str | Path) -> tuple[Path, str]:
    """Path and expected hash of the champion package; loading it checks the hash against the registry."""
    path, entry = registry_package(registry)
    return path, entry["package_hash"]


def registry_versions(registry: str | Path) -> tuple[list[dict[str, Any]], int | None]:
    """Every registered version's entry and the champion's version (an empty registry has neither)."""
    reg = _read_registry(Path(registry))
    return reg["packages"], reg["champion"]
