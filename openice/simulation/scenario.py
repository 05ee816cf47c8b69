"""One simulated run, end to end: fresh database, platform, population, the day loop. The demo and what-if
both run a `Scenario`; a what-if is the same scenario with a changed policy, funder or macro factor."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Engine

from openice.decisioning.domain import parse
from openice.decisioning.policy import Policy, TypedPolicy
from openice.errors import ValidationError
from openice.matching.institutions import Institution, TypedInstitution, terms_currency
from openice.scoring.loaded_model import Scorer
from openice.servicing.products import demo_products
from openice.simulation.platform import Platform, build_platform, demo_institutions
from openice.simulation.population import World
from openice.simulation.simulator import Behaviour, SimulationResult, Simulator
from openice.storage.engine import make_engine, migrate

DAYS_PER_MONTH = 30.44
QUIET_DAYS = 30  # no new applicants in the last month, so the last loans reach a first due date


@dataclass(frozen=True)
class Scenario:
    borrowers: int = 800
    months: int = 12
    seed: int = 7
    start: date = date(2026, 1, 1)
    policy: Policy = field(default_factory=Policy)
    institutions: tuple[Institution, ...] | None = None  # None: the five demo funders sized to the arrivals
    behaviour: Behaviour = field(default_factory=Behaviour)

    def __post_init__(self) -> None:
        if self.borrowers < 10:
            raise ValidationError("must be at least 10", field="borrowers")
        if not 2 <= self.months <= 60:
            raise ValidationError("must be between 2 and 60", field="months")

    @property
    def days(self) -> int:
        return round(self.months * DAYS_PER_MONTH)

    @property
    def arrival_days(self) -> int:
        return self.days - QUIET_DAYS

    def funders(self) -> list[Institution]:
        return list(self.institutions or demo_institutions(self.borrowers / self.arrival_days))


@dataclass
class Run:
    engine: Engine
    platform: Platform
    result: SimulationResult


def fresh_engine(url: str, start: date) -> Engine:
    """A migrated database; an SQLite file is deleted first so every run starts from nothing."""
    if url.startswith("sqlite:///"):
        for suffix in ("", "-wal", "-shm"):
            Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
    engine = make_engine(url)
    migrate(engine, start)
    return engine


def run_scenario(url: str, scenario: Scenario, model: Path, world: World | None = None, on_day: Any = None) -> Run:
    """Run the scenario on a fresh database at `url` with the model package at `model`."""
    engine = fresh_engine(url, scenario.start)
    platform = build_platform(engine, Scorer.load(model), scenario.funders(), scenario.policy, scenario.seed)
    world = world or World.fit()
    population = world.population(scenario.borrowers, scenario.arrival_days, scenario.seed)
    result = Simulator(platform, population, scenario.seed, scenario.behaviour).run(
        scenario.start, scenario.days, on_day
    )
    return Run(engine, platform, result)


def _merge(base: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in change.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def apply_change(scenario: Scenario, change: dict[str, Any]) -> Scenario:
    """The scenario with a change: `policy` (cut-offs, pricing grid..., money in major units as in the policy
    file), `institutions` (by code, credit box merged field by field, money in major units as in the institution
    file) and `behaviour` (e.g. macro_stress).
    Unknown keys are refused."""
    unknown = set(change) - {"policy", "institutions", "behaviour"}
    if unknown:
        raise ValidationError(
            f"unknown sections {sorted(unknown)}; use policy, institutions, behaviour", field="change"
        )
    currency = terms_currency(p.currency for p in demo_products())  # edits are typed as the files are
    typed = {**TypedPolicy.of(scenario.policy).model_dump(mode="json", exclude_none=True), "currency": currency}
    policy = parse(TypedPolicy, _merge(typed, change.get("policy") or {})).in_minor()
    funders = scenario.funders()
    edits = change.get("institutions") or {}
    missing = set(edits) - {i.code for i in funders}
    if missing:
        raise ValidationError(
            f"no institution {sorted(missing)}; known: {[i.code for i in funders]}", field="institutions"
        )
    funders = [
        parse(
            TypedInstitution, _merge(TypedInstitution.of(i, currency).model_dump(mode="json"), edits.get(i.code, {}))
        ).in_minor(currency)
        for i in funders
    ]
    behaviour_change = change.get("behaviour") or {}
    unknown = set(behaviour_change) - set(Behaviour.__dataclass_fields__)
    if unknown:
        raise ValidationError(
            f"unknown fields {sorted(unknown)}; known: {sorted(Behaviour.__dataclass_fields__)}", field="behaviour"
        )
    behaviour = replace(scenario.behaviour, **behaviour_change)
    return replace(scenario, policy=policy, institutions=tuple(funders), behaviour=behaviour)


def load_change(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ValidationError(f"no such file: {path}", field="change")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValidationError("expected a mapping with policy / institutions / behaviour", field="change")
    return data
