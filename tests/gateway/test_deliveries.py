"""The gateway's storage on SQLite and PostgreSQL: leases, order per subject, dead letters and their replay,
secrets with an overlap, circuits, and callback signatures taken once."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import Engine, select

from openice.decisioning.pii import PiiVault
from openice.errors import Conflict, NotFound, Unavailable
from openice.matching.deliveries import CallbackSignatures, CircuitRepository, DeliveryRepository, SecretRepository
from openice.matching.webhooks import Circuit, CircuitState
from openice.storage import gateway_tables
from tests.decisioning.helpers import VAULT
from tests.matching.test_boxes import institution

NOW = 1_800_000_000.0


def enqueue(engine: Engine, *subjects: str) -> list[int]:
    with engine.begin() as conn:
        repo = DeliveryRepository(conn)
        return [repo.enqueue("BANK-A", "offer", s, f"key-{i}-{s}", {"n": i}, NOW) for i, s in enumerate(subjects)]


def claim(engine: Engine, now: float = NOW, lease: float = 30.0, limit: int = 10) -> list[int]:
    with engine.begin() as conn:
        return [d.id for d in DeliveryRepository(conn).claim(now, lease, limit)]


def test_only_the_oldest_pending_delivery_of_a_subject_is_due_and_a_lease_keeps_others_off(engine: Engine) -> None:
    a1, b1, a2 = enqueue(engine, "drawdown/1", "drawdown/2", "drawdown/1")
    assert claim(engine) == [a1, b1]  # a2 waits behind a1
    assert claim(engine, NOW + 10) == []  # leased: a second relay finds nothing
    assert claim(engine, NOW + 30) == [a1, b1]  # the leases ran out (their relay died): sent again
    with engine.begin() as conn:
        DeliveryRepository(conn).delivered(a1, 1, "taken")
    assert claim(engine, NOW + 31) == [a2]  # a1 is done: a2 is next, b1 is still leased
    with engine.begin() as conn:
        repo = DeliveryRepository(conn)
        repo.delivered(a2, 1, "taken")
        repo.postpone(b1, 1, NOW + 100, "HTTP 503")
        assert repo.get(b1).lease_until is None and repo.get(b1).last_error == "HTTP 503"
    assert claim(engine, NOW + 99) == [] and claim(engine, NOW + 100) == [b1]


def test_a_dead_letter_replays_once_under_the_same_key(engine: Engine) -> None:
    (d,) = enqueue(engine, "loan/7")
    with engine.begin() as conn:
        repo = DeliveryRepository(conn)
        letter = repo.dead(d, 8, "no answer within 5 s")
        assert (repo.get(d).status, repo.get(d).attempts, repo.get(d).last_error) == ("dead", 8, "no answer within 5 s")
        (listed,) = repo.dead_letters()
        assert (listed.id, listed.delivery_id, listed.attempts, listed.idempotency_key) == (
            letter,
            d,
            8,
            "key-0-loan/7",
        )
    assert claim(engine, NOW + 1000) == []
    with engine.begin() as conn:
        assert DeliveryRepository(conn).replay(letter, NOW + 1000) == d
    with engine.begin() as conn:
        repo = DeliveryRepository(conn)
        assert (repo.get(d).status, repo.get(d).attempts) == ("pending", 0) and repo.dead_letters() == []
        assert len(repo.dead_letters(pending_only=False)) == 1
    assert claim(engine, NOW + 1000) == [d]
    with engine.begin() as conn, pytest.raises(Conflict, match="already replayed"):
        DeliveryRepository(conn).replay(letter, NOW)
    with engine.begin() as conn, pytest.raises(NotFound):
        DeliveryRepository(conn).replay(letter + 99, NOW)


def test_a_rotated_secret_overlaps_with_the_one_it_replaced_and_neither_is_stored_in_clear(engine: Engine) -> None:
    with engine.begin() as conn:
        secrets = SecretRepository(conn, lambda: VAULT)
        assert secrets.in_use("BANK-A", NOW) == []
        first = secrets.rotate("BANK-A", 3600, NOW)
        assert secrets.in_use("BANK-A", NOW) == [first] and len(first) == 64
        second = secrets.rotate("BANK-A", 3600, NOW + 10)
        assert secrets.in_use("BANK-A", NOW + 10) == [second, first]
        assert secrets.in_use("BANK-A", NOW + 3610) == [second]  # the overlap is over
        raw = conn.execute(select(gateway_tables.institution_secrets)).one()
    stored = f"{raw.current} {raw.previous}"
    assert first not in stored and second not in stored and stored.count(f"v2:{VAULT.key_id}:") == 2
    with pytest.raises(InvalidTag):  # bound to its institution: copied into another's row, it does not decrypt
        VAULT.decrypt(gateway_tables.secret_context("BANK-B"), raw.current)
    with engine.begin() as conn, pytest.raises(Unavailable, match="is not set"):
        SecretRepository(conn, lambda: PiiVault.from_env("OPENICE_TEST_NO_SUCH_KEY")).in_use("BANK-A", NOW)


def test_circuits_are_stored_per_institution_and_routing_reads_the_tripped_ones(engine: Engine) -> None:
    bank = institution("BANK-A", circuit_threshold=2, circuit_cooldown_seconds=60)
    other = institution("BANK-B")
    with engine.begin() as conn:
        circuits = CircuitRepository(conn)
        assert circuits.get(bank) == Circuit(threshold=2, cooldown=60)
        circuits.save("BANK-A", circuits.get(bank, lock=True).failed(NOW).failed(NOW + 1))
        circuits.save("BANK-B", circuits.get(other).failed(NOW))
        tripped = circuits.tripped({"BANK-A": bank, "BANK-B": other})
    assert list(tripped) == ["BANK-A"]
    assert (tripped["BANK-A"].state, tripped["BANK-A"].since, tripped["BANK-A"].cooldown) == (
        CircuitState.OPEN,
        NOW + 1,
        60,
    )
    with engine.begin() as conn:  # a delivery to each goes through: both close, and a third never failed
        circuits = CircuitRepository(conn)
        for code in ("BANK-A", "BANK-B", "BANK-C"):
            circuits.succeeded(code)
        assert circuits.get(bank) == Circuit(threshold=2, cooldown=60) and circuits.get(other) == Circuit()
        assert circuits.tripped({"BANK-A": bank, "BANK-B": other}) == {}


def test_a_callback_signature_is_taken_once_and_old_ones_are_forgotten(engine: Engine) -> None:
    with engine.begin() as conn:
        seen = CallbackSignatures(conn)
        assert seen.first_use("a" * 64, "BANK-A", NOW, NOW - 600)
        assert not seen.first_use("a" * 64, "BANK-A", NOW, NOW - 600)  # the replay
        assert seen.first_use("b" * 64, "BANK-A", NOW + 1, NOW - 600)
        assert seen.first_use("c" * 64, "BANK-A", NOW + 700, NOW + 100)  # forgets a and b on the way
        assert seen.first_use("a" * 64, "BANK-A", NOW, NOW + 100)  # forgotten (refused by the window anyway)
