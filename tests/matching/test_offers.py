"""Institutions that decide by hand, against SQLite and PostgreSQL: an offer waits for its answer; accepting
originates the loan, declining or letting it expire passes the drawdown on."""

from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from openice.errors import Conflict, NotFound
from openice.matching.institutions import CreditBox
from openice.matching.service import Matching
from openice.servicing.service import Servicing
from openice.storage import decisioning_tables, servicing_tables
from openice.storage.uow import EngineUnits
from openice.tenancy import Principal, Role
from tests.decisioning.helpers import VAULT
from tests.matching.test_boxes import institution
from tests.matching.test_routing import open_line

MANUAL, AUTO = (Principal(f"key-{code}", Role.INSTITUTION, code) for code in ("MANUAL", "AUTO"))  # who answers


def setup(engine: Engine, second: str = "automatic") -> Matching:
    """MANUAL has the best margin and decides by hand; AUTO (or a second manual one) is next."""
    box = CreditBox(max_pd=0.2)
    matching = Matching(EngineUnits(engine), VAULT)
    matching.register_institutions(
        [
            institution("MANUAL", credit_box=box, rate="0.05", acceptance="manual", offer_ttl_seconds=600),
            institution("AUTO", credit_box=box, rate="0.08", acceptance=second),
        ]
    )
    return matching


def used(engine: Engine, code: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(decisioning_tables.quota_usage.c.used).where(
                    decisioning_tables.quota_usage.c.institution_code == code,
                    decisioning_tables.quota_usage.c.period == "D",
                )
            ).scalar()
            or 0
        )


def offer(engine: Engine, offer_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(decisioning_tables.offers).where(decisioning_tables.offers.c.id == offer_id)).one()


def test_an_offer_waits_and_acceptance_originates(engine: Engine, servicing: Servicing) -> None:
    matching = setup(engine)
    line = open_line(engine)
    waiting = matching.drawdown(line, 1_000_000, 12, "dd-m1")
    assert waiting["status"] == "offered" and waiting["institution"] == "MANUAL" and waiting["loan_id"] is None
    assert used(engine, "MANUAL") == 1_000_000  # its quota is held while it decides
    assert matching.drawdown(line, 1_000_000, 12, "dd-m1")["status"] == "offered"  # the key replays the state
    first = waiting["offers"][0]
    assert offer(engine, first).expires_at > offer(engine, first).created_at
    with pytest.raises(NotFound):
        matching.answer(AUTO, first, accept=True)  # not AUTO's offer
    funded = matching.answer(MANUAL, first, accept=True, reason="fits our book")
    assert funded["status"] == "funded" and funded["institution"] == "MANUAL"
    with engine.connect() as conn:
        loan = conn.execute(
            select(servicing_tables.loans).where(servicing_tables.loans.c.id == funded["loan_id"])
        ).one()
    assert (loan.funder, loan.principal) == ("MANUAL", 1_000_000)
    assert offer(engine, first).status == "accepted" and offer(engine, first).answered_at is not None
    assert matching.answer(MANUAL, first, accept=True) == funded  # answering again replays
    with pytest.raises(Conflict):
        matching.answer(MANUAL, first, accept=False)  # too late to change its mind


def test_a_decline_passes_the_drawdown_to_the_next_institution(engine: Engine, servicing: Servicing) -> None:
    matching = setup(engine)
    line = open_line(engine)
    waiting = matching.drawdown(line, 1_000_000, 12, "dd-m2")
    result = matching.answer(MANUAL, waiting["offers"][0], accept=False, reason="sector limit")
    assert result["status"] == "funded" and result["institution"] == "AUTO"
    assert result["reasons"]["MANUAL"] == ["declined: sector limit"]
    assert used(engine, "MANUAL") == 0 and used(engine, "AUTO") == 1_000_000
    assert [offer(engine, o).status for o in result["offers"]] == ["declined", "accepted"]


def test_nobody_left_releases_the_line(engine: Engine, servicing: Servicing) -> None:
    matching = setup(engine, second="manual")
    line = open_line(engine)
    waiting = matching.drawdown(line, 1_000_000, 12, "dd-m3")
    nxt = matching.answer(MANUAL, waiting["offers"][0], accept=False)
    assert nxt["status"] == "offered" and nxt["institution"] == "AUTO"
    done = matching.answer(AUTO, nxt["offers"][-1], accept=False)
    assert done["status"] == "no_funder" and done["loan_id"] is None
    with engine.connect() as conn:
        drawn = conn.execute(
            select(decisioning_tables.credit_lines.c.drawn).where(decisioning_tables.credit_lines.c.id == line)
        ).scalar_one()
    assert drawn == 0 and used(engine, "MANUAL") == 0 and used(engine, "AUTO") == 0


def test_an_unanswered_offer_expires_and_moves_on(engine: Engine, servicing: Servicing) -> None:
    matching = setup(engine)
    line = open_line(engine)
    waiting = matching.drawdown(line, 1_000_000, 12, "dd-m4")
    first = waiting["offers"][0]
    assert matching.expire_offers() == []  # not due yet
    with engine.begin() as conn:  # its deadline passes
        conn.execute(
            update(decisioning_tables.offers)
            .where(decisioning_tables.offers.c.id == first)
            .values(expires_at="2000-01-01T00:00:00.000+00:00")
        )
    expired = matching.expire_offers()
    assert [(e["offer_id"], e["institution"], e["drawdown_status"]) for e in expired] == [(first, "MANUAL", "funded")]
    assert expired[0]["loan_id"] is not None
    assert offer(engine, first).status == "expired" and used(engine, "MANUAL") == 0
    with engine.connect() as conn:
        row = conn.execute(
            select(decisioning_tables.drawdowns).where(decisioning_tables.drawdowns.c.id == waiting["drawdown_id"])
        ).one()
    assert (row.status, row.institution_code) == ("funded", "AUTO")
    with pytest.raises(Conflict):
        matching.answer(MANUAL, first, accept=True)  # the answer came too late
