"""Made-up but valid borrowers and applications, for the demo, the benchmark and the anomaly reference.

Nothing is downloaded: identities are generated with correct check characters, incomes and amounts
from fixed-seed distributions.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np

from openice.decisioning.anomaly import features_of
from openice.decisioning.identity import age_on, id_check_char

REGIONS = (
    ("110101", "Beijing", "Beijing"),
    ("310101", "Shanghai", "Shanghai"),
    ("440106", "Guangdong", "Guangzhou"),
    ("330106", "Zhejiang", "Hangzhou"),
    ("510107", "Sichuan", "Chengdu"),
    ("420106", "Hubei", "Wuhan"),
)
EMPLOYMENT = ("salaried", "salaried", "salaried", "self-employed", "freelance", "retired")
PURPOSES = ("consumption", "education", "travel", "home", "business", "medical")


def resident_id(region: str, born: date, serial: int) -> str:
    first17 = f"{region}{born:%Y%m%d}{serial % 1000:03d}"
    return first17 + id_check_char(first17)


def registration(rng: np.random.Generator, k: int, today: date) -> dict[str, Any]:
    region, province, city = REGIONS[int(rng.integers(len(REGIONS)))]
    born = today - timedelta(days=int(rng.integers(20 * 365, 55 * 365)))
    return {
        "name": f"Applicant {k}",
        "national_id": resident_id(region, born, k),
        "date_of_birth": born,
        "mobile": f"13{int(rng.integers(0, 10**9)):09d}",
        "province": province,
        "city": city,
        "device_id": f"dev-{k:08d}",
    }


def application(rng: np.random.Generator, product_code: str = "CASH-EI", tenor: int = 12) -> dict[str, Any]:
    income = int(rng.lognormal(np.log(900_000), 0.5)) // 100 * 100  # about 9,000 a month
    return {
        "product_code": product_code,
        "income_monthly": income,
        "employment": EMPLOYMENT[int(rng.integers(len(EMPLOYMENT)))],
        "existing_debt_monthly": int(income * rng.uniform(0, 0.3)) // 100 * 100,
        "existing_debt_balance": int(rng.integers(0, 5_000_000)) // 100 * 100,
        "requested_amount": int(income * rng.uniform(0.5, 5)) // 100 * 100 + 100_000,
        "requested_tenor": tenor,
        "purpose": PURPOSES[int(rng.integers(len(PURPOSES)))],
        "bureau": {
            "inquiries_6m": int(rng.poisson(1.5)),
            "delinquencies_24m": int(rng.poisson(0.3)),
            "credit_history_months": int(rng.integers(0, 180)),
            "revolving_utilisation": round(float(rng.beta(2, 4)), 3),
        },
    }


def reference_matrix(n: int = 5000, seed: int = 11, today: date = date(2026, 1, 1)) -> np.ndarray:
    """The anomaly model's picture of ordinary applications."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n):
        reg = registration(rng, k, today)
        rows.append(features_of(application(rng), age_on(reg["date_of_birth"], today)))
    return np.array(rows)
