"""Registration, assessment, storage and replay against SQLite and PostgreSQL."""

import re
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from openice.decisioning.service import Decisioning
from openice.errors import ValidationError
from openice.servicing.products import PPM
from openice.servicing.service import Servicing
from openice.storage import decisioning_tables
from tests.decisioning.helpers import good_application, make_decisioning, person


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        self.now += 60
        return self.now


@pytest.fixture
def decisioning(engine: Engine, servicing: Servicing) -> Decisioning:
    return make_decisioning(engine, clock=Clock())


def test_approved_application_gets_a_priced_line_under_the_cap(decisioning: Decisioning, engine: Engine) -> None:
    borrower = decisioning.register(person(1))["borrower_id"]
    result = decisioning.apply(borrower, good_application())
    assert result["outcome"] == "approved" and result["line_id"] and result["reasons"] == []
    with engine.connect() as conn:
        line = conn.execute(
            select(decisioning_tables.credit_lines).where(decisioning_tables.credit_lines.c.id == result["line_id"])
        ).one()
    assert line.amount == 3_000_000 and line.status == "active" and line.grade == result["grade"]
    assert line.apr_ppm <= 360_000  # CASH-EI caps APR at 36%
    assert line.rate_ppm == 110_000  # grade B of the default grid


def test_pricing_is_lowered_to_respect_the_product_cap(engine: Engine, servicing: Servicing) -> None:
    from openice.decisioning.policy import Policy

    policy = Policy(pricing={"A": "0.5", "B": "0.5", "C": "0.5", "D": "0.5", "E": "0.5", "F": "0.5"})
    decisioning = make_decisioning(engine, policy=policy)
    borrower = decisioning.register(person(2))["borrower_id"]
    line = decisioning.apply(borrower, good_application())["line"]
    assert line["rate_ppm"] < 500_000 and line["apr_ppm"] <= 0.36 * PPM


def test_personal_data_is_stored_encrypted(decisioning: Decisioning, engine: Engine) -> None:
    reg = person(3)
    borrower = decisioning.register(reg)["borrower_id"]
    with engine.connect() as conn:
        row = conn.execute(
            select(decisioning_tables.borrowers).where(decisioning_tables.borrowers.c.id == borrower)
        ).one()
    stored = " ".join(str(v) for v in row)
    assert reg["national_id"] not in stored and reg["mobile"] not in stored and reg["name"] not in stored
    assert decisioning.vault.decrypt("national_id", row.national_id_enc) == reg["national_id"]


def test_registration_checks_identity(decisioning: Decisioning) -> None:
    with pytest.raises(ValidationError) as err:
        decisioning.register(person(4, date_of_birth=date(1970, 1, 1)))
    assert err.value.field == "date_of_birth"
    with pytest.raises(ValidationError) as err:
        decisioning.register(person(4, mobile="12345"))
    assert err.value.field == "mobile"
    first = decisioning.register(person(4))
    assert decisioning.register(person(4)) == {"borrower_id": first["borrower_id"], "existing": True}


def test_credit_decline_carries_reasons(decisioning: Decisioning) -> None:
    borrower = decisioning.register(person(5))["borrower_id"]
    risky = good_application(bureau={"delinquencies_24m": 3, "revolving_utilisation": 0.9})
    result = decisioning.apply(borrower, risky)
    assert result["outcome"] == "declined" and result["line_id"] is None
    assert any(r.startswith("cut-off: PD") for r in result["reasons"])
    poor = decisioning.apply(borrower, good_application(income_monthly=200_000, existing_debt_monthly=90_000))
    [afford] = [r for r in poor["reasons"] if r.startswith("affordability")]
    assert poor["outcome"] == "declined" and "minor units" not in afford
    # every amount in the reason is written in yuan with the currency, e.g. "1,000.00 CNY"
    assert re.fullmatch(
        r"affordability: at most [0-9,]+\.[0-9]{2} CNY a month of new debt service supports [0-9,]+\.[0-9]{2} CNY, "
        r"below the minimum line [0-9,]+\.[0-9]{2} CNY",
        afford,
    ), afford


def test_fraud_rules_fire_from_the_records(decisioning: Decisioning) -> None:
    original = person(6)
    first = decisioning.register(original)["borrower_id"]
    impostor = decisioning.register(person(6, name="Someone Else"))["borrower_id"]
    assert impostor != first
    result = decisioning.apply(impostor, good_application())
    assert result["outcome"] == "declined" and "shared_national_id" in result["reasons"][0]
    borrower = decisioning.register(person(7))["borrower_id"]
    outcomes = [decisioning.apply(borrower, good_application())["outcome"] for _ in range(4)]
    assert outcomes == ["approved", "approved", "approved", "declined"]  # the fourth in 24 hours
    listed = decisioning.register(person(8))["borrower_id"]
    decisioning.blacklist("device", person(8)["device_id"], "device farm")
    blocked = decisioning.apply(listed, good_application())
    assert blocked["outcome"] == "declined" and blocked["reasons"][0].startswith("blacklist")
    with pytest.raises(ValidationError):
        decisioning.blacklist("email", "x", "no such kind")


def test_a_stored_decision_reproduces(decisioning: Decisioning) -> None:
    borrower = decisioning.register(person(9))["borrower_id"]
    result = decisioning.apply(
        borrower, good_application(bureau={"delinquencies_24m": 1, "revolving_utilisation": 0.5})
    )
    record = decisioning.decision(result["decision_id"])
    assert record["model_hash"] == decisioning.scorer.package_hash and len(record["input_hash"]) == 64
    assert record["rules_fired"] == [] and record["outcome"] == result["outcome"]
    again = decisioning.reproduce(result["decision_id"])
    assert again["reproduced"] and again["recomputed"] == again["stored"]


def test_the_database_refuses_to_change_a_decision(decisioning: Decisioning, engine: Engine) -> None:
    from sqlalchemy import delete, update
    from sqlalchemy.exc import DBAPIError

    borrower = decisioning.register(person(10))["borrower_id"]
    decision_id = decisioning.apply(borrower, good_application())["decision_id"]
    for statement in (
        update(decisioning_tables.decisions).values(outcome="declined"),
        delete(decisioning_tables.decisions),
    ):
        with pytest.raises(DBAPIError, match="immutable"), engine.begin() as conn:
            conn.execute(statement.where(decisioning_tables.decisions.c.id == decision_id))
    assert decisioning.decision(decision_id)["outcome"] == "approved"


def test_a_policy_typed_in_major_units_sizes_the_line_and_its_decisions_reproduce(
    engine: Engine, servicing: Servicing, tmp_path: Path
) -> None:
    """The application asks for 30,000.00 CNY; the policy's `max_line` of 25,000.00 CNY (2,500,000 fen) caps the line
    (income 15,000.00 x 8 for grade B and the affordable amount are far above it)."""
    from openice.decisioning.policy import Policy

    (tmp_path / "policy.yaml").write_text("currency: CNY\nmax_line: '25000.00'\nmin_line: '1000.00'\n")
    decisioning = make_decisioning(engine, policy=Policy.load(tmp_path / "policy.yaml"))
    borrower = decisioning.register(person(11))["borrower_id"]
    result = decisioning.apply(borrower, good_application())
    assert result["outcome"] == "approved" and result["line"]["amount"] == 2_500_000
    record = decisioning.decision(result["decision_id"])
    assert (record["policy"]["currency"], record["policy"]["max_line"]) == ("CNY", 2_500_000)  # stored in fen
    assert record["policy_hash"] == Policy.from_json(record["policy"]).policy_hash
    assert decisioning.reproduce(result["decision_id"])["reproduced"]
    (tmp_path / "yen.yaml").write_text("currency: JPY\nmax_line: '250000'\n")
    in_yen = make_decisioning(engine, policy=Policy.load(tmp_path / "yen.yaml"))
    with pytest.raises(ValidationError, match="the credit policy's amounts are in JPY; product CASH-EI lends in CNY"):
        in_yen.apply(borrower, good_application())
    with engine.connect() as conn:  # refused before anything was stored
        assert conn.execute(select(decisioning_tables.decisions.c.id)).scalars().all() == [result["decision_id"]]
