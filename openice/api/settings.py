"""Service settings: defaults, then an optional TOML file's [api] table, then OPENICE_* environment variables.

One place reads configuration so `openice serve`, the tests and the load bench start the same service.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from openice.access.sms import SENDERS
from openice.errors import ValidationError
from openice.storage.engine import DEFAULT_URL


@dataclass(frozen=True)
class Settings:
    db: str = DEFAULT_URL
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    model: str | None = None  # package or registry directory that scores applications
    model_registry: str | None = None  # registry listed read-only at /v1/models
    policy: str | None = None  # platform credit policy file (YAML/JSON); the built-in default otherwise
    # PEM file of the Ed25519 key that signs the model packages and policy hybrid institutions pull (made there on
    # first use, mode 0600; only its public key is ever served)
    signing_key: str | None = None
    # directory of per-institution credit policies for hybrid institutions (CODE.yaml or CODE.json); an institution
    # without one pulls the platform's `policy`
    hybrid_policies: str | None = None
    max_body_bytes: int = 1_048_576
    rate_limit_per_second: float = 100.0  # per API key, per worker process
    rate_limit_burst: int = 200
    statement_timeout_ms: int = 10_000
    keep_alive_seconds: int = 5
    access_log: bool = False  # one line per request on stderr (uvicorn's access log)
    concurrency: int = 10  # requests a worker runs at once; within the connection pool, so none waits for one
    payments: str = "instant"  # the payment gateway pages take payments through (openice.servicing.payments)
    offer_sweep_seconds: float = 10.0  # how often a worker expires unanswered offers; 0 leaves it to requests
    # whether each worker runs a relay delivering institution events (`openice serve` turns it on unless --no-relay;
    # `openice relay` runs one alone), and how many deliveries it has in flight at once
    relay: bool = False
    relay_concurrency: int = 64
    # FastAPI's own OpenTelemetry spans, metrics and logs for every request, to the global providers (an operator
    # who exports traces installs them): off by default, as without an exporter they only cost CPU
    telemetry: bool = False
    sms: str = "outbox"  # how one-time codes are sent (`openice.access.sms.SENDERS`); the outbox only logs them
    key_overlap_hours: float = 24.0  # how long a rotated API key's previous secret keeps working

    def __post_init__(self) -> None:
        if self.sms not in SENDERS:
            raise ValidationError(f"{self.sms!r} is not one of {sorted(SENDERS)}", field="sms")

    @classmethod
    def load(cls, path: str | Path | None = None, **overrides: Any) -> Settings:
        """Defaults < TOML file (`path` or $OPENICE_CONFIG) < environment < explicit overrides (CLI flags)."""
        values: dict[str, Any] = {}
        path = path or os.environ.get("OPENICE_CONFIG")
        if path:
            with open(path, "rb") as fh:
                values.update(tomllib.load(fh).get("api", {}))
        known = {f.name: f for f in fields(cls)}
        unknown = set(values) - set(known)
        if unknown:
            raise ValidationError(f"unknown settings {sorted(unknown)}", field="config")
        for name in known:
            env = os.environ.get(f"OPENICE_{name.upper()}")
            if env is not None:
                values[name] = env
        values.update({k: v for k, v in overrides.items() if v is not None})
        return replace(cls(), **{k: _coerce(known[k].type, k, v) for k, v in values.items()})


def _coerce(kind: Any, name: str, value: Any) -> Any:
    if str(kind) == "bool" and not isinstance(value, bool):
        flag = str(value).strip().lower()
        if flag not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            raise ValidationError(f"{value!r} is not true or false (1/0, true/false, yes/no, on/off)", field=name)
        return flag in ("1", "true", "yes", "on")
    target = {"int": int, "float": float}.get(str(kind))
    try:
        return target(value) if target else value
    except ValueError:
        raise ValidationError(f"{value!r} is not a valid {kind}", field=name) from None
