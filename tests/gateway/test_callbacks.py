"""Signed callbacks on the accept and decline endpoints, on SQLite and PostgreSQL: a wrong, stale or replayed
signature is 401 and changes nothing; a fresh one answers once (a retry under the same key replays the answer); a
late answer is a 409."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update

from openice.access.keys import ApiKeys
from openice.matching.deliveries import DeliveryRepository
from openice.matching.gateway import Webhooks
from openice.matching.institutions import CreditBox
from openice.matching.webhooks import callback_message, sign
from openice.servicing.service import Servicing
from openice.storage import api_tables, decisioning_tables, gateway_tables, idempotency_tables, servicing_tables
from openice.storage.uow import EngineUnits
from tests.api.conftest import World, build_world
from tests.decisioning.helpers import VAULT, application_body
from tests.matching.test_boxes import body, institution


@pytest.fixture
def world(engine: Engine, servicing: Servicing) -> World:
    """The API's world (not the relay's of this package's conftest)."""
    return build_world(engine)


def webhook_offer(world: World) -> tuple[int, int, str]:
    """INST-W answers by webhook at the best margin; a fresh drawdown is offered to it: (offer, drawdown, secret)."""
    inst = institution(
        "INST-W",
        rate="0.05",
        acceptance="webhook",
        webhook_url="http://127.0.0.1:9/webhook",
        credit_box=CreditBox(max_pd=0.2, max_amount=1_500_000),
    )
    put = world.call("operator", "PUT", "/v1/institutions/INST-W", json=body(inst))
    assert put.status_code == 200, put.text
    world.keys["INST-W"] = ApiKeys(EngineUnits(world.engine)).create("institution", "INST-W")["secret"]
    secret = Webhooks(EngineUnits(world.engine), lambda: VAULT).rotate_secret("INST-W", 0, time.time())
    bid = world.ids[1]["borrower"]
    line = world.call("borrower1", "POST", f"/v1/borrowers/{bid}/applications", key="app-w", json=application_body())
    drawn = world.call(
        "borrower1",
        "POST",
        f"/v1/credit-lines/{line.json()['line_id']}/drawdowns",
        key="dd-w",
        json={"amount": "5000.00", "currency": "CNY", "tenor": 12},
    )
    assert drawn.json()["status"] == "offered" and drawn.json()["institution_code"] == "INST-W", drawn.text
    offer = world.call("INST-W", "GET", "/v1/offers", params={"drawdown_id": drawn.json()["id"]}).json()["items"][0]
    return offer["id"], drawn.json()["id"], secret


def signed_call(world: World, path: str, key: str, body: dict[str, Any], secret: str, at: float | None = None) -> Any:
    raw = json.dumps(body).encode()
    header = sign([secret], int(at or time.time()), callback_message("POST", path, raw))
    return world.client.post(
        path,
        content=raw,
        headers={
            **world.as_("INST-W"),
            "Idempotency-Key": key,
            "Content-Type": "application/json",
            "Openice-Signature": header,
        },
    )


def state(world: World, offer_id: int, drawdown_id: int) -> tuple[str, str, int]:
    with world.engine.connect() as conn:
        offer = conn.execute(
            select(decisioning_tables.offers.c.status).where(decisioning_tables.offers.c.id == offer_id)
        ).scalar_one()
        drawdown = conn.execute(
            select(decisioning_tables.drawdowns.c.status).where(decisioning_tables.drawdowns.c.id == drawdown_id)
        ).scalar_one()
        loans = conn.execute(select(func.count()).select_from(servicing_tables.loans)).scalar_one()
    return offer, drawdown, loans


def test_a_wrong_stale_or_replayed_signature_is_401_and_changes_nothing(world: World) -> None:
    offer, drawdown, secret = webhook_offer(world)
    path = f"/v1/offers/{offer}/acceptance"
    before = state(world, offer, drawdown)
    assert before[:2] == ("sent", "offered")
    wrong = signed_call(world, path, "acc-1", {"reason": "fits"}, "not-the-secret")
    assert wrong.status_code == 401 and wrong.json()["field"] == "Openice-Signature", wrong.text
    assert "does not match" in wrong.json()["detail"]
    stale = signed_call(world, path, "acc-1", {"reason": "fits"}, secret, at=time.time() - 600)
    assert stale.status_code == 401 and "more than 300 s" in stale.json()["detail"]
    elsewhere = signed_call(world, f"/v1/offers/{offer}/decline", "acc-1", {"reason": "fits"}, secret)
    assert elsewhere.status_code == 201  # the decline path is signed for itself: it is a different callback
    assert state(world, offer, drawdown)[0] == "declined"


def test_a_signed_answer_is_taken_once_and_a_copy_of_it_is_refused(world: World) -> None:
    offer, drawdown, secret = webhook_offer(world)
    path = f"/v1/offers/{offer}/acceptance"
    raw = json.dumps({"reason": "fits"}).encode()
    headers = {
        **world.as_("INST-W"),
        "Idempotency-Key": "acc-2",
        "Content-Type": "application/json",
        "Openice-Signature": sign([secret], int(time.time()), callback_message("POST", path, raw)),
    }
    first = world.client.post(path, content=raw, headers=headers)
    assert first.status_code == 201 and first.json()["drawdown_status"] == "funded", first.text
    after = state(world, offer, drawdown)
    copy = world.client.post(path, content=raw, headers=headers)  # the same bytes again: a replay
    assert copy.status_code == 401 and "replay" in copy.json()["detail"]
    # a retry signed afresh (at a later second: the same second is the same signature) under the same key
    again = signed_call(world, path, "acc-2", {"reason": "fits"}, secret, at=time.time() + 1)
    assert again.status_code == 201 and again.json() == first.json()
    assert state(world, offer, drawdown) == after and after[:2] == ("accepted", "funded")
    late = signed_call(world, f"/v1/offers/{offer}/decline", "dec-2", {"reason": "changed our mind"}, secret)
    assert late.status_code == 409 and "already accepted" in late.json()["detail"]


def test_an_answer_after_the_deadline_is_a_409_and_the_drawdown_has_moved_on(world: World) -> None:
    offer, drawdown, secret = webhook_offer(world)
    with world.engine.begin() as conn:
        conn.execute(
            update(decisioning_tables.offers)
            .where(decisioning_tables.offers.c.id == offer)
            .values(expires_at="2000-01-01T00:00:00.000+00:00")
        )
    late = signed_call(world, f"/v1/offers/{offer}/acceptance", "acc-3", {}, secret)
    assert late.status_code == 409 and "expired" in late.json()["detail"], late.text
    with world.engine.connect() as conn:  # the offer's delivery is still queued; the relay will find it closed
        assert conn.execute(select(func.count()).select_from(gateway_tables.deliveries)).scalar_one() == 1


def test_an_operator_lists_dead_letters_and_replays_one_once(world: World) -> None:
    with world.engine.begin() as conn:
        deliveries = DeliveryRepository(conn)
        delivery = deliveries.enqueue("INST-A", "loan.funded", "loan/1", "event-1", {"event": "loan.funded"}, 0.0)
        letter = deliveries.dead(delivery, 8, "HTTP 503")
    listed = world.call("operator", "GET", "/v1/dead-letters").json()["items"]
    assert [(d["id"], d["institution_code"], d["attempts"], d["replayed_at"]) for d in listed] == [
        (letter, "INST-A", 8, None)
    ]
    assert world.call("INST-A", "GET", "/v1/dead-letters").status_code == 403
    replayed = world.call("operator", "POST", f"/v1/dead-letters/{letter}/replay", key="rp-1")
    assert replayed.status_code == 201 and replayed.json() == {"dead_letter_id": letter, "delivery_id": delivery}
    assert world.call("operator", "POST", f"/v1/dead-letters/{letter}/replay", key="rp-1").json() == replayed.json()
    again = world.call("operator", "POST", f"/v1/dead-letters/{letter}/replay", key="rp-2")
    assert again.status_code == 409 and "already replayed" in again.json()["detail"]
    assert world.call("operator", "POST", f"/v1/dead-letters/{letter + 1}/replay", key="rp-3").status_code == 404
    with world.engine.connect() as conn:
        assert DeliveryRepository(conn).get(delivery).status == "pending"
    audit = world.call("operator", "GET", "/v1/audit", params={"action": "dead_letter.replayed"}).json()["items"]
    assert [a["resource"] for a in audit] == [f"dead_letter/{letter}"]


def test_an_institution_rotates_its_own_secret_over_the_api_shown_once_and_the_old_one_overlaps(world: World) -> None:
    offer, drawdown, first = webhook_offer(world)  # INST-W's first secret, made with no overlap
    path = "/v1/institutions/INST-W/webhook-secret"
    made = world.call("INST-W", "POST", path, key="rotate-1", params={"overlap_hours": 1})
    assert made.status_code == 201, made.text
    second = made.json()["secret"]
    assert made.json() == {"institution": "INST-W", "secret": second, "overlap_hours": 1.0} and len(second) == 64
    replayed = world.call("INST-W", "POST", path, key="rotate-1", params={"overlap_hours": 1})
    assert (replayed.status_code, replayed.json()["secret"]) == (201, None)  # not shown twice, nor stored
    with world.engine.connect() as conn:
        audited = conn.execute(
            select(api_tables.audit_log.c.tenant, api_tables.audit_log.c.resource).where(
                api_tables.audit_log.c.action == "gateway.secret_rotated"
            )
        ).all()
        stored = " ".join(r.response or "" for r in conn.execute(select(idempotency_tables.idempotency_keys)))
    assert [tuple(a) for a in audited] == [("INST-W", "institution/INST-W")]  # once, by the institution
    assert second not in stored
    # the one it replaced still signs a callback during the overlap
    acceptance = f"/v1/offers/{offer}/acceptance"
    assert signed_call(world, acceptance, "acc-rot", {"reason": "fits"}, first).status_code == 201
    assert state(world, offer, drawdown)[:2] == ("accepted", "funded")
    assert world.call("INST-B", "POST", path, key="rotate-2").status_code == 404  # another institution's
    by_operator = world.call("operator", "POST", path, key="rotate-3", params={"overlap_hours": 0})
    assert by_operator.status_code == 201 and by_operator.json()["secret"] not in (first, second)
    missing = world.call("INST-W", "POST", path)
    assert missing.status_code == 422 and missing.json()["field"] == "Idempotency-Key", missing.text
