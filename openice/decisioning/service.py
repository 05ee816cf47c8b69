"""Registration, assessment and replay of decisions: the application layer over the pure assessment."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection

from openice.decisioning.anomaly import AnomalyModel
from openice.decisioning.assess import assess
from openice.decisioning.domain import (
    ApplicationInput,
    AssessmentInput,
    Decision,
    FraudFacts,
    Outcome,
    Registration,
    TypedApplication,
    canonical_hash,
    parse,
)
from openice.decisioning.identity import age_on, check_mobile, check_resident_id, normalise_id
from openice.decisioning.pii import PiiVault
from openice.decisioning.policy import Policy
from openice.decisioning.repository import (
    BLACKLIST_KINDS,
    ApplicationRepository,
    BlacklistRepository,
    BorrowerRepository,
    CreditLineRepository,
    DecisionRepository,
    dumps,
)
from openice.decisioning.scorer_protocol import ScorerLike
from openice.decisioning.synthetic import reference_matrix
from openice.errors import Conflict, ValidationError
from openice.servicing.repository import ServicingUnit
from openice.storage.days import from_day, to_day
from openice.storage.uow import UnitsOfWork

DAY_SECONDS = 86_400


class DecisionUnit:
    """A unit of work with the decisioning repositories beside servicing's (`core`: products, the calendar)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.core = ServicingUnit(conn)
        self.borrowers = BorrowerRepository(conn)
        self.applications = ApplicationRepository(conn)
        self.decisions = DecisionRepository(conn)
        self.lines = CreditLineRepository(conn)
        self.blacklist = BlacklistRepository(conn)


@contextmanager
def decision_unit(units: UnitsOfWork, readonly: bool = False, savepoint: bool = True) -> Iterator[DecisionUnit]:
    with units.begin(readonly=readonly, savepoint=savepoint) as conn:
        yield DecisionUnit(conn)


@dataclass(frozen=True)
class Identifiers:
    national_id: str
    mobile: str
    device: str


class Decisioning:
    """Registers borrowers and turns applications into stored, reproducible decisions."""

    def __init__(
        self,
        units: UnitsOfWork,
        scorer: ScorerLike | None,
        vault: PiiVault,
        policy: Policy | None = None,
        anomaly: AnomalyModel | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.units = units
        self.scorer = scorer
        self.vault = vault
        self.policy = policy or Policy()
        self._anomaly = anomaly
        self.clock = clock

    @property
    def anomaly(self) -> AnomalyModel:
        """The anomaly model, fitted on the default reference set on first use when none was given."""
        if self._anomaly is None:
            self._anomaly = AnomalyModel.fit(reference_matrix())
        return self._anomaly

    @property
    def model(self) -> ScorerLike:
        """The scoring model; registration and blacklisting work without one."""
        if self.scorer is None:
            raise ValidationError(
                "no model package loaded; pass --model (a package or registry directory)", field="model"
            )
        return self.scorer

    def register(self, data: dict[str, Any] | Registration) -> dict[str, Any]:
        """Store a borrower's identity encrypted; the same ID under the same name returns the earlier record."""
        reg = data if isinstance(data, Registration) else parse(Registration, data)
        with decision_unit(self.units) as unit:
            today = unit.core.calendar.business_date
            national_id = normalise_id(reg.national_id)
            check_resident_id(national_id, reg.date_of_birth, today)
            mobile = check_mobile(reg.mobile)
            ids = self._hashes(national_id, mobile, reg.device_id)
            name_hash = self.vault.keyed_hash("name", reg.name)
            existing = unit.borrowers.same_person(ids.national_id, name_hash)
            if existing is not None:
                return {"borrower_id": existing, "existing": True}
            borrower_id = "B" + uuid.uuid4().hex[:20]
            enc = self.vault.encrypt
            unit.borrowers.add(
                dict(
                    id=borrower_id,
                    registered_day=to_day(today),
                    registered_at=int(self.clock()),
                    name_enc=enc("name", reg.name),
                    national_id_enc=enc("national_id", national_id),
                    mobile_enc=enc("mobile", mobile),
                    date_of_birth_enc=enc("date_of_birth", reg.date_of_birth.isoformat()),
                    name_hash=name_hash,
                    national_id_hash=ids.national_id,
                    mobile_hash=ids.mobile,
                    device_hash=ids.device,
                    birth_year=reg.date_of_birth.year,
                    province=reg.province,
                    city=reg.city,
                )
            )
            return {"borrower_id": borrower_id, "existing": False}

    def _hashes(self, national_id: str, mobile: str, device: str) -> Identifiers:
        h = self.vault.keyed_hash
        return Identifiers(h("national_id", national_id), h("mobile", mobile), h("device", device))

    def blacklist(self, kind: str, value: str, reason: str) -> None:
        """List an ID number, mobile or device; later applications that use it are rejected."""
        if kind not in BLACKLIST_KINDS:
            raise ValidationError(f"must be one of {list(BLACKLIST_KINDS)}", field="kind")
        value = {"national_id": normalise_id, "mobile": check_mobile}.get(kind, str.strip)(value)
        with decision_unit(self.units) as unit:
            unit.blacklist.add(
                kind, self.vault.keyed_hash(kind, value), reason, to_day(unit.core.calendar.business_date)
            )

    def in_minor(self, data: dict[str, Any] | TypedApplication) -> ApplicationInput:
        """An application as typed (major units with the currency) in minor units of its product's currency: the
        one conversion the API, the command line, origination and the borrower app make before `apply`."""
        typed = data if isinstance(data, TypedApplication) else parse(TypedApplication, data)
        with decision_unit(self.units, readonly=True) as unit:
            currency = unit.core.products.get(typed.product_code).currency
        return typed.in_minor(currency)

    def product_currency(self, product_code: str) -> str:
        """The currency a product lends in: a decision's stored money (minor units) is read in it."""
        with decision_unit(self.units, readonly=True) as unit:
            return str(unit.core.products.get(product_code).currency)

    def apply(self, borrower_id: str, data: dict[str, Any] | ApplicationInput) -> dict[str, Any]:
        """Assess an application and store the decision (and the line, when approved) in one transaction."""
        app = data if isinstance(data, ApplicationInput) else parse(ApplicationInput, data)
        now = int(self.clock())
        with decision_unit(self.units, savepoint=False) as unit:  # its callers stop at any error in it
            today = unit.core.calendar.business_date
            borrower = unit.borrowers.get(borrower_id)
            product = unit.core.products.get(app.product_code)
            device = self.vault.keyed_hash("device", app.device_id) if app.device_id else borrower.device_hash
            ids = Identifiers(borrower.national_id_hash, borrower.mobile_hash, device)
            facts = self._facts(unit, borrower_id, ids, now)
            born = date.fromisoformat(self.vault.decrypt("date_of_birth", borrower.date_of_birth_enc))
            inputs = AssessmentInput(
                application=app.model_dump(mode="json"),
                age=age_on(born, today),
                province=borrower.province,
                decided_on=today,
                facts=facts,
            )
            decision = assess(inputs, product, self.model, self.policy, self.anomaly)
            application_id = "A" + uuid.uuid4().hex[:20]
            unit.applications.add(
                dict(
                    id=application_id,
                    borrower_id=borrower_id,
                    product_code=app.product_code,
                    applied_day=to_day(today),
                    applied_at=now,
                    national_id_hash=ids.national_id,
                    mobile_hash=ids.mobile,
                    device_hash=ids.device,
                    payload=dumps(inputs.application),
                )
            )
            decision_id = "D" + uuid.uuid4().hex[:20]
            unit.decisions.add(self._record(decision_id, application_id, borrower_id, inputs, decision))
            line_id = None
            if decision.outcome is Outcome.APPROVED and decision.line is not None:
                line_id = "L" + uuid.uuid4().hex[:20]
                line = decision.line
                unit.lines.add(
                    dict(
                        id=line_id,
                        borrower_id=borrower_id,
                        decision_id=decision_id,
                        product_code=app.product_code,
                        approved_day=to_day(today),
                        expiry_day=to_day(line.expiry),
                        status="active",
                        amount=line.amount,
                        rate_ppm=line.rate_ppm,
                        apr_ppm=line.apr_ppm,
                        max_tenor=line.max_tenor,
                        grade=decision.grade,
                        pd=decision.pd,
                        score=decision.score,
                    )
                )
            return {
                "decision_id": decision_id,
                "application_id": application_id,
                "line_id": line_id,
                **decision.to_json(),
            }

    def _facts(self, unit: DecisionUnit, borrower_id: str, ids: Identifiers, now: int) -> FraudFacts:
        """Counts include the application being assessed, so "more than N" reads naturally."""
        since = now - DAY_SECONDS
        columns = {"national_id": "national_id_hash", "mobile": "mobile_hash", "device": "device_hash"}
        values = {"national_id": ids.national_id, "mobile": ids.mobile, "device": ids.device}
        counts = unit.applications.identity_facts({columns[k]: values[k] for k in columns}, borrower_id, since)
        others = {k: counts[f"others_{columns[k]}"] for k in columns}
        recent = {k: counts[f"recent_{columns[k]}"] + 1 for k in columns}
        return FraudFacts(
            other_identities_with_id=others["national_id"],
            other_identities_with_mobile=others["mobile"],
            other_identities_with_device=others["device"],
            applications_24h_by_id=recent["national_id"],
            applications_24h_by_mobile=recent["mobile"],
            applications_24h_by_device=recent["device"],
            blacklisted=unit.blacklist.hits(values),
        )

    def _record(
        self, decision_id: str, application_id: str, borrower_id: str, inputs: AssessmentInput, decision: Decision
    ) -> dict[str, Any]:
        result = decision.to_json()
        return dict(
            id=decision_id,
            application_id=application_id,
            borrower_id=borrower_id,
            decided_day=to_day(inputs.decided_on),
            outcome=decision.outcome.value,
            fraud=decision.fraud,
            pd=decision.pd,
            score=decision.score,
            grade=decision.grade,
            model_hash=self.model.package_hash,
            anomaly_model_hash=self.anomaly.model_hash,
            policy_hash=self.policy.policy_hash,
            input_hash=inputs.input_hash,
            inputs=dumps(inputs.to_json()),
            policy=dumps(self.policy.model_dump(mode="json")),
            rules_fired=dumps([r.rule for r in decision.rules if r.fired]),
            reasons=dumps(list(decision.reasons)),
            result=dumps(result),
        )

    def decision(self, decision_id: str) -> dict[str, Any]:
        """The stored record, as written: inputs, hashes, rules fired, reasons and result."""
        with decision_unit(self.units, readonly=True) as unit:
            row = unit.decisions.get(decision_id)
        record = dict(row._mapping)
        for name in ("inputs", "policy", "rules_fired", "reasons", "result"):
            record[name] = json.loads(record[name])
        record["decided_on"] = from_day(record.pop("decided_day")).isoformat()
        return record

    def reproduce(self, decision_id: str) -> dict[str, Any]:
        """Recompute a stored decision from its stored inputs and policy with the same model package."""
        record = self.decision(decision_id)
        for what, stored, ours in (
            ("model package", record["model_hash"], self.model.package_hash),
            ("anomaly model", record["anomaly_model_hash"], self.anomaly.model_hash),
        ):
            if stored != ours:
                raise Conflict(
                    f"the decision used {what} {stored[:12]}, this service has {ours[:12]}; "
                    f"load that {what} to reproduce it",
                    field="model_hash",
                )
        inputs = AssessmentInput.from_json(record["inputs"])
        if inputs.input_hash != record["input_hash"]:
            raise Conflict("stored inputs do not match their hash: the record was altered", field="input_hash")
        with decision_unit(self.units, readonly=True) as unit:
            product = unit.core.products.get(inputs.application["product_code"])
        again = json.loads(
            dumps(assess(inputs, product, self.model, Policy.from_json(record["policy"]), self.anomaly).to_json())
        )
        return {
            "decision_id": decision_id,
            "reproduced": canonical_hash(again) == canonical_hash(record["result"]),
            "stored": record["result"],
            "recomputed": again,
        }
