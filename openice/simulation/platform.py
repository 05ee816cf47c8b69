"""The platform the simulator runs against: products, a model trained on the bundled data, policy, institutions.

Everything here goes through the public services (Servicing, Decisioning, Matching), the same calls production
makes, so a simulated year exercises the real code paths.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TypedDict

from sqlalchemy import Engine

from openice.datasets import load
from openice.decisioning.pii import PiiVault, parse_key
from openice.decisioning.policy import Policy
from openice.decisioning.repository import bind_pii_key
from openice.decisioning.service import Decisioning
from openice.matching.institutions import CreditBox, Institution, terms_currency
from openice.matching.service import Matching
from openice.scoring.loaded_model import Scorer
from openice.scoring.model import TrainConfig
from openice.scoring.train import train_package
from openice.servicing.products import demo_products
from openice.servicing.service import Servicing
from openice.storage.uow import EngineUnits

PRODUCTS = ("CASH-EI", "CASH-EP")
AVERAGE_DRAWDOWN = 1_200_000  # fen: what a simulated borrower draws on average, to size quotas with the arrivals


def train_demo_model(out: Path, rows: int | None = None) -> Path:
    """The platform's champion, trained on the bundled LendingClub loans (its grade and rate left out);
    `rows` trains on a random sample, for quick runs such as the tests."""
    if not out.exists():
        data = load("lending_club")
        frame = data.frame.sample(rows, random_state=0) if rows else data.frame
        train_package(
            frame,
            data.target.loc[frame.index],
            out,
            cfg=TrainConfig(inner_folds=2, max_rounds=300),
            source={"dataset": "lending_club", "purpose": "demo", "rows": len(frame)},
        )
    return out


class Quotas(TypedDict):
    daily_quota: int
    monthly_quota: int


def demo_institutions(applications_per_day: float) -> list[Institution]:
    """Five funders with different boxes, prices, quotas and business models, in the demo products' currency; quotas
    scale with the arrivals."""
    currency = terms_currency(p.currency for p in demo_products())
    day = max(int(applications_per_day * AVERAGE_DRAWDOWN * 1.5), 2_000_000)

    def quotas(share: float) -> Quotas:
        return {"daily_quota": int(day * share * 2), "monthly_quota": int(day * share * 30)}

    return [
        Institution(
            code="BANK-PRIME",
            kind="bank",
            name="Prime National Bank",
            currency=currency,
            business_model="capital-light",
            funding_cost=Decimal("0.025"),
            rate=Decimal("0.06"),
            priority=10,
            **quotas(0.35),
            credit_box=CreditBox(max_pd=0.05, min_income=500_000, max_dti=0.45, min_age=23),
        ),
        Institution(
            code="TRUST-GUAR",
            kind="trust",
            name="Guaranteed Trust Plan",
            currency=currency,
            business_model="capital-heavy",
            guarantee_payout_dpd=90,
            funding_cost=Decimal("0.045"),
            rate=Decimal("0.08"),
            priority=20,
            **quotas(0.3),
            credit_box=CreditBox(max_pd=0.12, max_amount=3_000_000, max_tenor=24),
        ),
        Institution(
            code="CFC-WEST",
            kind="consumer-finance",
            name="Western Consumer Finance",
            currency=currency,
            business_model="capital-light",
            funding_cost=Decimal("0.05"),
            rate=Decimal("0.10"),
            priority=30,
            **quotas(0.25),
            credit_box=CreditBox(max_pd=0.2, provinces=("Sichuan", "Hubei", "Zhejiang")),
        ),
        Institution(
            code="BANK-CITY",
            kind="bank",
            name="City Commercial Bank",
            currency=currency,
            business_model="capital-light",
            funding_cost=Decimal("0.035"),
            rate=Decimal("0.075"),
            priority=15,
            **quotas(0.2),
            credit_box=CreditBox(
                max_pd=0.09, provinces=("Beijing", "Shanghai", "Guangdong"), max_amount=2_000_000, products=("CASH-EI",)
            ),
        ),
        Institution(
            code="OWN-BOOK",
            name="Platform balance sheet",
            currency=currency,
            business_model="on-balance-sheet",
            funding_cost=Decimal("0.06"),
            rate=Decimal("0.06"),
            priority=90,
            **quotas(0.15),
            credit_box=CreditBox(max_pd=0.25, max_amount=1_500_000),
        ),
    ]


@dataclass
class Platform:
    engine: Engine
    servicing: Servicing
    decisioning: Decisioning
    matching: Matching
    institutions: list[Institution]


def demo_pii_key(seed: int) -> str:
    """A demo-only PII key derived from the seed, so a run is reproducible; production keys come from the env."""
    return base64.b64encode(hashlib.sha256(f"openice-simulation-{seed}".encode()).digest()).decode()


def demo_vault(seed: int) -> PiiVault:
    return PiiVault(parse_key(demo_pii_key(seed)))


def build_platform(
    engine: Engine, scorer: Scorer, institutions: list[Institution], policy: Policy | None = None, seed: int = 0
) -> Platform:
    """Create the products and institutions on a migrated database and wire the services to it.

    Decisions read a clock that follows the business date, so velocity rules count per simulated day.
    """
    units = EngineUnits(engine)
    servicing = Servicing(units)
    existing = {p.code for p in servicing.products()}
    for product in demo_products():
        if product.code not in existing:
            servicing.create_product(product)
    vault = demo_vault(seed)
    bind_pii_key(engine, vault)

    def business_clock() -> float:
        return (servicing.business_date().toordinal() - 719_163) * 86_400.0  # seconds since 1970 at midnight

    decisioning = Decisioning(units, scorer, vault, policy or Policy(), clock=business_clock)
    matching = Matching(units, vault)
    matching.register_institutions(institutions)
    return Platform(engine, servicing, decisioning, matching, institutions)
