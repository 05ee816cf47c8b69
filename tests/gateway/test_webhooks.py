"""The pure rules of the gateway, worked by hand: signing and its checks, the backoff schedule, the circuit, and a
loan event's body."""

from __future__ import annotations

import random

import pytest

from openice.matching.webhooks import (
    Backoff,
    Circuit,
    CircuitState,
    Event,
    SignatureError,
    callback_message,
    loan_event,
    loan_event_body,
    parse_answer,
    sign,
    verify,
)

BODY = b'{"offer_id":7}'
# `printf '1700000000.{"offer_id":7}' | openssl dgst -sha256 -hmac whsec-test` (and -hmac whsec-old)
CURRENT = "23924c46c7518868e2e17a04498bbc98ddfcb4390e99428b9b2b642937eddd58"
PREVIOUS = "1b8940b99cc21710cb21d34da5772d6ce830e22bcbc5e02b63a69e2ed8d6a82b"
T = 1_700_000_000


def test_a_signature_is_hmac_sha256_over_the_timestamp_and_the_body() -> None:
    assert sign(["whsec-test"], T, BODY) == f"t={T},v1={CURRENT}"
    assert sign(["whsec-test", "whsec-old"], T, BODY) == f"t={T},v1={CURRENT},v1={PREVIOUS}"  # during an overlap
    with pytest.raises(ValueError):
        sign([], T, BODY)


def test_verification_takes_either_secret_of_an_overlap_and_names_what_failed() -> None:
    assert verify(["whsec-test"], f"t={T},v1={CURRENT}", BODY, now=T) == T
    assert verify(["whsec-new", "whsec-old"], f"t={T},v1={PREVIOUS}", BODY, now=T) == T  # rotated: the old still works
    with pytest.raises(SignatureError, match="does not match"):
        verify(["whsec-new"], f"t={T},v1={PREVIOUS}", BODY, now=T)  # the overlap is over
    with pytest.raises(SignatureError, match="does not match"):
        verify(["whsec-test"], f"t={T},v1={CURRENT}", b'{"offer_id":8}', now=T)  # another body
    with pytest.raises(SignatureError, match="does not match"):
        verify(["whsec-test"], f"t={T + 1},v1={CURRENT}", BODY, now=T)  # the timestamp is signed too
    with pytest.raises(SignatureError, match="must be t="):
        verify(["whsec-test"], f"v1={CURRENT}", BODY, now=T)


@pytest.mark.parametrize(("now", "ok"), [(T + 300, True), (T - 300, True), (T + 301, False), (T - 301, False)])
def test_the_timestamp_window_is_five_minutes_either_way(now: int, ok: bool) -> None:
    header = f"t={T},v1={CURRENT}"
    if ok:
        assert verify(["whsec-test"], header, BODY, now=now) == T
    else:
        with pytest.raises(SignatureError, match="more than 300 s"):
            verify(["whsec-test"], header, BODY, now=now)


def test_a_callback_signs_its_method_and_path_with_its_body() -> None:
    one = callback_message("post", "/v1/offers/7/acceptance", b"{}")
    assert one == b"POST /v1/offers/7/acceptance\n{}"
    header = sign(["s"], T, one)
    with pytest.raises(SignatureError):  # the same signed answer sent to another offer
        verify(["s"], header, callback_message("POST", "/v1/offers/8/acceptance", b"{}"), now=T)


class Fixed(random.Random):
    """A generator whose uniform(a, b) is always a + share * (b - a)."""

    def __init__(self, share: float) -> None:
        super().__init__(0)
        self.share = share

    def uniform(self, a: float, b: float) -> float:
        return a + self.share * (b - a)


def test_backoff_doubles_to_its_cap_with_equal_jitter() -> None:
    backoff = Backoff(base=1.0, cap=10.0, attempts=6)
    assert [backoff.ceiling(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    assert [backoff.delay(n, Fixed(0.0)) for n in (1, 2, 3, 4, 5)] == [0.5, 1, 2, 4, 5]  # half the ceiling at least
    assert [backoff.delay(n, Fixed(1.0)) for n in (1, 2, 3, 4, 5)] == [1, 2, 4, 8, 10]  # the ceiling at most
    assert backoff.delay(3, Fixed(0.5)) == 3.0  # 2 + 0.5 * 2
    assert not backoff.exhausted(5) and backoff.exhausted(6)


def test_a_seeded_backoff_is_the_same_schedule_every_run_and_spreads_retries() -> None:
    backoff = Backoff(base=2.0, cap=60.0)
    first = [backoff.delay(n, random.Random(42)) for n in range(1, 8)]
    assert first == [backoff.delay(n, random.Random(42)) for n in range(1, 8)]
    spread = {round(backoff.delay(4, random.Random(seed)), 6) for seed in range(20)}
    assert len(spread) == 20 and min(spread) >= 8 and max(spread) <= 16


def test_the_circuit_opens_after_the_threshold_and_lets_one_trial_through_after_the_cooldown() -> None:
    circuit = Circuit(threshold=3, cooldown=30.0)
    for now in (100.0, 101.0):
        circuit = circuit.failed(now)
        assert circuit.state is CircuitState.CLOSED and circuit.allows(now)
    circuit = circuit.failed(102.0)
    assert (circuit.state, circuit.failures, circuit.since) == (CircuitState.OPEN, 3, 102.0)
    assert not circuit.allows(131.9) and circuit.allows(132.0)
    trial = circuit.trying(132.0)
    assert trial.state is CircuitState.HALF_OPEN and not trial.allows(140.0)  # one trial at a time
    assert trial.succeeded() == Circuit(threshold=3, cooldown=30.0)  # closed, failures forgotten
    again = trial.failed(133.0)
    assert (again.state, again.since) == (CircuitState.OPEN, 133.0)  # a failed trial opens it at once
    assert trial.allows(162.0)  # a trial that never reported back is taken as lost after a cool-down


def test_a_success_resets_the_count_of_failures_in_a_row() -> None:
    circuit = Circuit(threshold=2).failed(1.0).succeeded().failed(2.0)
    assert circuit.state is CircuitState.CLOSED and circuit.failures == 1
    assert Circuit().trying(5.0) == Circuit()  # a closed circuit has no trial


@pytest.mark.parametrize(
    ("body", "answer"),
    [
        (b'{"decision": "accept", "reason": "fits"}', (True, "fits")),
        (b'{"decision": "decline"}', (False, "declined")),
        (b'{"decision": "later"}', None),
        (b"", None),
        (b"not json", None),
        (b"[1]", None),
    ],
)
def test_an_answer_in_the_response_is_accept_decline_or_later(body: bytes, answer: object) -> None:
    assert parse_answer(body) == answer


@pytest.mark.parametrize(
    ("kind", "payload", "event"),
    [
        ("loan.originated", {}, "loan.funded"),
        ("loan.repayment", {"amount": 1}, "repayment.received"),
        ("loan.prepayment", {"amount": 1}, "repayment.received"),
        ("loan.bucket_changed", {"from": "C", "to": "M1"}, "loan.overdue"),
        ("loan.bucket_changed", {"from": "M1", "to": "M2"}, None),  # overdue already
        ("loan.bucket_changed", {"from": "M1", "to": "C"}, None),  # cured
        ("loan.guarantee_payout", {"institution": "B"}, "guarantee.payout"),
        ("settlement.statement_ready", {"institution": "B"}, "statement.ready"),
        ("loan.recovery", {}, None),
        ("collections.call", {}, None),
    ],
)
def test_which_servicing_events_an_institution_hears_of(kind: str, payload: dict, event: str | None) -> None:
    assert loan_event(kind, payload) == event


@pytest.mark.parametrize(
    ("kind", "currency", "detail", "money"),
    [
        ("loan.funded", "CNY", {"principal": 1_000_000, "funder": "B", "business_model": "capital-light"},
         {"principal": "10000.00"}),  # 1,000,000 fen
        ("repayment.received", "CNY", {"transaction_id": 3, "amount": 12_345}, {"amount": "123.45"}),
        ("repayment.received", "JPY", {"transaction_id": 3, "amount": 12_345}, {"amount": "12345"}),  # no minor unit
        ("guarantee.payout", "CNY", {"institution": "B", "amount": 5}, {"amount": "0.05"}),
        ("loan.overdue", "CNY", {"from": "C", "to": "M1"}, {}),  # no money in it
    ],
)  # fmt: skip
def test_a_loan_event_body_gives_its_money_in_major_units_of_the_loans_currency(
    kind: Event, currency: str, detail: dict, money: dict
) -> None:
    body = loan_event_body(kind, 9, "2026-01-15", currency, detail)
    head = {"event": kind, "version": 2, "loan_id": 9, "business_date": "2026-01-15", "currency": currency}
    assert body == {**head, **detail, **money}
    assert all(isinstance(body[name], str) for name in money)
