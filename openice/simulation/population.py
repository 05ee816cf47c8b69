"""Simulated applicants drawn from the joint distribution of the real LendingClub loans, and their true risk.

Columns are not drawn independently: a Gaussian copula (normal scores of the ranks, their correlation matrix)
couples the empirical margins, so income, utilisation, inquiries, the loan size and LendingClub's own sub-grade
move together as in the real data. Categories enter the copula ordered by their bad rate.

The *true* risk of an applicant comes from a ground-truth model fitted separately on the real data: a logistic
regression on its own features (including LendingClub's sub-grade and rate, which the platform never sees) plus a
per-borrower frailty (noise). The platform's scoring model is never consulted for behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
from scipy.stats import norm, rankdata
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler

from openice.datasets import load
from openice.decisioning.synthetic import REGIONS, resident_id
from openice.scoring.metrics import summary

HIDDEN = ("sub_grade", "int_rate")  # LendingClub's own risk view: drives the truth, never shown to the platform
EMPLOYED_YEARS = {"emp_lt_1": 0, "emp_ge_10": 12, "emp_unk": 3}


@dataclass
class Copula:
    """Empirical margins joined by a Gaussian copula; categorical columns as bad-rate-ordered codes."""

    columns: list[str]
    margins: list[np.ndarray]  # sorted values (numeric) or category labels in code order
    categorical: list[bool]
    corr: np.ndarray

    @classmethod
    def fit(cls, frame: pd.DataFrame, y: np.ndarray) -> Copula:
        scores, margins, categorical = [], [], []
        for name in frame.columns:
            col = frame[name]
            if pd.api.types.is_numeric_dtype(col):
                values = col.to_numpy(dtype=float)
                margins.append(np.sort(values))
                categorical.append(False)
            else:
                order = pd.Series(y).groupby(col.astype(str).to_numpy()).mean().sort_values().index.to_numpy()
                codes = pd.Categorical(col.astype(str), categories=order).codes
                values = codes.astype(float)
                margins.append(order[np.sort(codes)])
                categorical.append(True)
            scores.append(norm.ppf((rankdata(values) - 0.5) / len(values)))
        corr = np.corrcoef(np.vstack(scores)) + 1e-9 * np.eye(len(scores))
        return cls(list(frame.columns), margins, categorical, corr)

    def sample(self, n: int, rng: np.random.Generator) -> pd.DataFrame:
        z = rng.standard_normal((n, len(self.columns))) @ np.linalg.cholesky(self.corr).T
        u = norm.cdf(z)
        out = {}
        for j, name in enumerate(self.columns):
            margin = self.margins[j]
            out[name] = margin[np.minimum((u[:, j] * len(margin)).astype(int), len(margin) - 1)]
        return pd.DataFrame(out)


def truth_features(frame: pd.DataFrame) -> np.ndarray:
    """The ground-truth model's own view of a borrower (not the platform's features)."""
    grade = frame["sub_grade"].astype(str)
    grade_index = (grade.str[0].map(ord) - ord("A")) * 5 + grade.str[1].astype(int)
    return np.column_stack(
        [
            grade_index,
            frame["int_rate"],
            np.log1p(frame["annual_inc"]),
            frame["funded_amnt"] / frame["annual_inc"].clip(lower=1000),
            frame["revol_util"],
            frame["all_util"],
            frame["inq_last_6mths"],
            frame["inq_last_12m"],
            frame["inq_fi"],
            frame["open_il_6m"],
            frame["delinq_2yrs"],
            (frame["term"].astype(str) == "term_60").astype(float),
            np.log1p(frame["total_bal_il"]),
            (frame["verification_status"].astype(str) == "Not_Verified").astype(float),
        ]
    ).astype(float)


@dataclass
class GroundTruth:
    """12-month default probability: logistic regression on the real data, plus a borrower frailty."""

    scaler: StandardScaler
    model: LogisticRegression
    frailty: float
    shift: float  # moves the intercept so the mean true PD equals the real bad rate despite the frailty
    cv_auc: float  # out-of-fold AUC on the real data: the ceiling any platform model can hope for
    bad_rate: float

    @classmethod
    def fit(cls, frame: pd.DataFrame, y: np.ndarray, frailty: float = 0.3, seed: int = 0) -> GroundTruth:
        x = truth_features(frame)
        oof = np.zeros(len(y))
        for tr, te in StratifiedKFold(5, shuffle=True, random_state=seed).split(x, y):
            scaler = StandardScaler().fit(x[tr])
            oof[te] = (
                LogisticRegression(C=0.1, max_iter=2000)
                .fit(scaler.transform(x[tr]), y[tr])
                .predict_proba(scaler.transform(x[te]))[:, 1]
            )
        scaler = StandardScaler().fit(x)
        model = LogisticRegression(C=0.1, max_iter=2000).fit(scaler.transform(x), y)
        eta = model.decision_function(scaler.transform(x))
        bad_rate = float(np.mean(y))
        noise = np.random.default_rng(seed).standard_normal((16, len(eta))) * frailty
        lo, hi = -3.0, 3.0
        for _ in range(50):  # the mean of a logistic-normal has no closed form: bisect the shift
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if expit(eta + mid + noise).mean() < bad_rate else (lo, mid)
        return cls(scaler, model, frailty, (lo + hi) / 2, float(summary(y, oof)["auc"]), bad_rate)

    def linear(self, frame: pd.DataFrame) -> np.ndarray:
        """The observable part of the true log-odds (what the best possible model could know)."""
        return self.model.decision_function(self.scaler.transform(truth_features(frame))) + self.shift

    def pd(self, frame: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
        return expit(self.linear(frame) + self.frailty * rng.standard_normal(len(frame)))


@dataclass
class Population:
    """Applicants in arrival order: real-like attributes, true PD, identity, fraud-ring membership."""

    frame: pd.DataFrame  # LendingClub-shaped attributes, hidden columns included
    true_pd: np.ndarray
    ring: np.ndarray  # fraud ring number, -1 for genuine applicants
    arrival: np.ndarray  # business-day offset of the application
    age: np.ndarray

    def __len__(self) -> int:
        return len(self.frame)

    def registration(self, i: int, today: date) -> dict[str, Any]:
        """A synthetic identity with a valid resident ID; ring members share a device and a mobile."""
        region, province, city = REGIONS[sum(map(ord, str(self.frame["addr_state"].iat[i]))) % len(REGIONS)]
        born = date(today.year - int(self.age[i]), 1, 1) + timedelta(days=int(i * 37 % 365))
        ring = int(self.ring[i])
        return {
            "name": f"Sim Applicant {i}",
            "national_id": resident_id(region, born, i),
            "date_of_birth": born,
            "mobile": f"15{ring:09d}" if ring >= 0 else f"13{i:09d}",
            "province": province,
            "city": city,
            "device_id": f"ring-{ring}" if ring >= 0 else f"dev-{i}",
        }

    def application(self, i: int, product_code: str) -> dict[str, Any]:
        """The platform's application schema; money in fen (one LendingClub dollar read as one yuan)."""
        row = self.frame.iloc[i]
        income = int(row["annual_inc"] / 12) * 100
        bureau = {k: (v if isinstance(v, str) else float(v)) for k, v in row.items() if k not in HIDDEN}
        return {
            "product_code": product_code,
            "income_monthly": income,
            "employment": "self-employed" if row["emp_length"] == "emp_unk" else "salaried",
            "existing_debt_monthly": int(row["total_bal_il"] * 0.03) * 100,
            "existing_debt_balance": int(row["total_bal_il"]) * 100,
            "requested_amount": int(row["funded_amnt"]) * 100,
            "requested_tenor": 24 if row["term"] == "term_60" else 12,
            "purpose": "consumption",
            "bureau": bureau,
        }


@dataclass
class World:
    """What the simulator learned from the real data: its copula and its ground truth."""

    copula: Copula
    truth: GroundTruth

    @classmethod
    def fit(cls, seed: int = 0) -> World:
        data = load("lending_club", include_leaky=True)
        y = data.target.to_numpy()
        return cls(Copula.fit(data.frame, y), GroundTruth.fit(data.frame, y, seed=seed))

    def population(self, n: int, days: int, seed: int, ring_share: float = 0.02) -> Population:
        """`n` applicants arriving over `days` business days; about `ring_share` of them in rings of 3-6."""
        rng = np.random.default_rng([seed, 0])
        frame = self.copula.sample(n, rng)
        true_pd = self.truth.pd(frame, rng)
        arrival = np.sort(rng.integers(0, max(days, 1), n))
        ring = np.full(n, -1)
        members = rng.permutation(n)[: int(n * ring_share)]
        r = 0
        while len(members) >= 3:
            size = min(int(rng.integers(3, 7)), len(members))
            group, members = members[:size], members[size:]
            ring[group] = r
            arrival[group] = arrival[group[0]] + rng.integers(0, 3, size)  # a ring applies within days
            r += 1
        ring_pd = np.where(ring >= 0, 1.0, true_pd)  # fraudsters never mean to repay
        order = np.argsort(arrival, kind="stable")
        years = np.array(
            [EMPLOYED_YEARS.get(e, int(str(e)[4:]) if str(e)[4:].isdigit() else 3) for e in frame["emp_length"]]
        )
        age = np.clip(22 + years + rng.normal(8, 6, n), 20, 58).astype(int)
        return Population(
            frame.iloc[order].reset_index(drop=True),
            ring_pd[order],
            ring[order],
            np.minimum(arrival[order], max(days, 1) - 1),
            age[order],
        )


def observed_auc(truth: GroundTruth, frame: pd.DataFrame, defaults: np.ndarray) -> float:
    """AUC of the true model's observable log-odds against simulated outcomes."""
    return float(summary(defaults, expit(truth.linear(frame)))["auc"])
