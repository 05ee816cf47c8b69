"""The collections step of end of day, set-based: after delinquency, payouts and write-offs have run, every
overdue loan has exactly one open case that shows its stage, days past due and overdue amount.

In order, in the step's one transaction:
1. promises to pay whose date is the day being closed (or whose case closes today) are judged: kept when the
   payments booked from the day the promise was made cover the amount, else broken (the case was held out of
   the queue until the day after the promise's date, and is back in it now);
2. cases whose loan is current again (cured), repaid, or fully recovered after write-off are closed;
3. open cases follow their loan's bucket; a move to a worse stage is an escalation and the case is due for
   contact the next day under the new stage's treatment;
4. loans that fell overdue today (or were written off with no case) get a case, due for contact the next day.

Each of these actions is also written to the outbox as a `collections.<action>` event, for whatever sends the
reminders (the M1 treatment is an SMS) or feeds a dialer or an agency.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from openice.clock import now_iso
from openice.collections.strategy import STAGES
from openice.servicing.buckets import WRITTEN_OFF

if TYPE_CHECKING:
    from openice.servicing.eod import DayContext

RANK = "CASE {col} " + " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(STAGES)) + " ELSE -1 END"
UNPAID = "i.principal - i.principal_paid + i.interest - i.interest_paid + i.fee - i.fee_paid"
OVERDUE = "(l.status = 'active' AND l.overdue_since IS NOT NULL AND l.dpd >= 1)"
ACTION = "INSERT INTO collection_actions (case_id, loan_id, business_day, kind, amount, detail, created_at) "


def step_collections(ctx: DayContext) -> int:
    """Keep collection cases in step with the loans; returns the number of loans in collections."""
    now = now_iso()
    count = ctx.temp(
        "eod_collect",
        f"""
        SELECT l.id AS loan_id, l.currency, l.dpd,
               CASE WHEN l.status = 'written_off' THEN '{WRITTEN_OFF}' ELSE l.bucket END AS stage,
               CASE WHEN l.status = 'written_off' THEN l.written_off - l.recovered
                    ELSE COALESCE(o.overdue, 0) + l.bal_penalty_receivable END AS overdue_amount
        FROM loans l
        LEFT JOIN (SELECT i.loan_id, CAST(SUM({UNPAID}) AS BIGINT) AS overdue
                   FROM installments i JOIN loans m ON m.id = i.loan_id
                   WHERE m.status = 'active' AND m.overdue_since IS NOT NULL AND i.booked = :yes AND i.due_day <= :d
                   GROUP BY i.loan_id) o ON o.loan_id = l.id
        WHERE {OVERDUE}
           OR (l.status = 'written_off' AND (l.closed_day = :d OR l.id IN (
               SELECT loan_id FROM collection_cases WHERE status = 'open')))""",
    )
    # Decided on the loan row, not by joining the step's unindexed working table (SQLite would loop over it).
    closing = ctx.temp(
        "eod_collect_closed",
        f"""
        SELECT c.id AS case_id, c.loan_id, CASE WHEN l.status = 'closed' THEN 'repaid'
                                                WHEN l.status = 'written_off' THEN 'recovered' ELSE 'cured' END AS how
        FROM collection_cases c JOIN loans l ON l.id = c.loan_id
        WHERE c.status = 'open' AND (NOT ({OVERDUE} OR l.status = 'written_off') OR c.loan_id IN (
            SELECT loan_id FROM eod_collect WHERE stage = '{WRITTEN_OFF}' AND overdue_amount <= 0))""",
    )
    _judge_promises(ctx, now)
    _close_and_follow(ctx, now, closing, count)
    # Every action of this step is also an event for later consumers (reminders, dialers, agencies). The loan
    # identifies the case (one open case per loan); case ids come from a sequence a crashed run may have skipped.
    ctx.run(
        """INSERT INTO outbox (business_day, event_type, loan_id, payload, published)
               SELECT :n, 'collections.' || kind, loan_id,
                      '{"detail": ' || COALESCE('"' || detail || '"', 'null') || ', "amount": '
                      || COALESCE(CAST(amount AS VARCHAR(24)), 'null') || '}', :no
               FROM collection_actions WHERE business_day = :d AND created_at = :now""",
        now=now,
    )
    return count


def _close_and_follow(ctx: DayContext, now: str, closing: int, count: int) -> None:
    if closing:
        ctx.run(ACTION + "SELECT case_id, loan_id, :d, 'closed', NULL, how, :now FROM eod_collect_closed", now=now)
        ctx.run(
            "UPDATE collection_cases SET status = 'closed', resolution = x.how, closed_day = :d "
            "FROM eod_collect_closed x WHERE collection_cases.id = x.case_id"
        )
    if not count:
        return
    escalated = f"{RANK.format(col='e.stage')} > {RANK.format(col='c.stage')}"
    ctx.run(
        ACTION
        + f"""SELECT c.id, c.loan_id, :d, 'escalated', NULL, e.stage, :now
        FROM collection_cases c JOIN eod_collect e ON e.loan_id = c.loan_id WHERE c.status = 'open' AND {escalated}""",
        now=now,
    )
    ctx.run(f"""UPDATE collection_cases SET stage = e.stage, dpd = e.dpd, overdue_amount = e.overdue_amount,
            next_contact_day = CASE WHEN {RANK.format(col="e.stage")} > {RANK.format(col="collection_cases.stage")}
                                    THEN :n ELSE next_contact_day END
            FROM eod_collect e WHERE collection_cases.loan_id = e.loan_id AND collection_cases.status = 'open'""")
    ctx.run("""INSERT INTO collection_cases (loan_id, currency, status, opened_day, stage, dpd, overdue_amount,
                                             next_contact_day, promises_kept, promises_broken)
               SELECT e.loan_id, e.currency, 'open', :d, e.stage, e.dpd, e.overdue_amount, :n, 0, 0 FROM eod_collect e
               WHERE e.overdue_amount > 0
                 AND NOT EXISTS (SELECT 1 FROM collection_cases c WHERE c.loan_id = e.loan_id AND c.status = 'open')""")
    ctx.run(
        ACTION
        + """SELECT c.id, c.loan_id, :d, 'opened', c.overdue_amount, c.stage, :now FROM collection_cases c
               WHERE c.opened_day = :d AND c.status = 'open' AND NOT EXISTS (
                   SELECT 1 FROM collection_actions a WHERE a.case_id = c.id AND a.kind = 'opened')""",
        now=now,
    )


def _judge_promises(ctx: DayContext, now: str) -> None:
    due = ctx.temp(
        "eod_promises",
        """
        SELECT c.id AS case_id, c.loan_id, c.promise_amount AS promised, CAST(COALESCE((
                   SELECT SUM(t.amount) FROM transactions t
                   WHERE t.loan_id = c.loan_id AND t.reversed = :no
                     AND t.kind IN ('repayment', 'prepayment', 'recovery')
                     AND t.booked_day BETWEEN c.promise_made_day AND :d), 0) AS BIGINT) AS paid
        FROM collection_cases c
        WHERE c.status = 'open' AND c.promise_day IS NOT NULL
          AND (c.promise_day <= :d OR c.id IN (SELECT case_id FROM eod_collect_closed))""",
    )
    if not due:
        return
    # The judgement is credited to the agent who took the promise.
    ctx.run(
        """INSERT INTO collection_actions (case_id, loan_id, business_day, kind, amount, agent, created_at)
               SELECT p.case_id, p.loan_id, :d,
                      CASE WHEN p.paid >= p.promised THEN 'promise_kept' ELSE 'promise_broken' END, p.paid,
                      (SELECT a.agent FROM collection_actions a WHERE a.case_id = p.case_id AND a.outcome = 'promise'
                       ORDER BY a.id DESC LIMIT 1), :now
               FROM eod_promises p""",
        now=now,
    )
    ctx.run("""UPDATE collection_cases SET
               promises_kept = promises_kept + CASE WHEN p.paid >= p.promised THEN 1 ELSE 0 END,
               promises_broken = promises_broken + CASE WHEN p.paid >= p.promised THEN 0 ELSE 1 END,
               promise_amount = NULL, promise_day = NULL, promise_made_day = NULL
               FROM eod_promises p WHERE collection_cases.id = p.case_id""")
