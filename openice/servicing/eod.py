"""Servicing's steps of end of day, set-based: each step is a handful of SQL statements over all loans at once.

`openice.close_of_day` runs them, with collections' step, in order and one transaction each (the steps and
their order are described there). Only loans with something happening that day are touched (the accrual and
provision steps touch every active loan, or every live guarantee, once a month). The per-loan rules these
statements implement live in `LoanAccount.close_day`; a test checks that both give the same loans and the same
ledger. `DayContext` is what every step, servicing's or another stage's, works through.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection, insert, text

from openice.clock import now_iso
from openice.servicing.products import PROVISION_BUCKETS
from openice.storage import servicing_tables
from openice.storage.days import from_day

ACTIVE = "status = 'active'"
# Interest goes to the funder's interest_income (its part, `LoanTerms.funder_interest`) and the platform's
# interest_spread_income (the rest), or all to the platform's platform_interest_income once it paid the guarantee
# out. The working tables carry pi (paid out), rp (the borrower's rate) and fp (the funder's) for it.
INTEREST_ACCOUNT = "CASE WHEN pi = 1 THEN 'platform_interest_income' ELSE 'interest_income' END"
PLATFORM_INTEREST = (
    "CASE WHEN l.guarantee_paid = :yes THEN 1 ELSE 0 END AS pi, l.rate_ppm AS rp, "
    "l.funder_rate_ppm AS fp, CASE WHEN l.dpd > l.non_accrual_dpd THEN 1 ELSE 0 END AS na"
)


def funder_interest(amount: str) -> str:
    """The funder's part of a non-negative interest amount, half-up, exactly as `LoanTerms.funder_interest`."""
    return f"(CASE WHEN pi = 1 OR fp >= rp THEN {amount} ELSE (2 * ({amount}) * fp + rp) / (2 * rp) END)"


def interest_lines(amount: str) -> list[tuple[str, str, str]]:
    """The credit lines of `amount` of interest earned by the calendar: the funder's (or the platform's after a
    payout) and the platform's spread, or all of it in suspense while the loan is in non-accrual (na)."""
    funder = funder_interest(amount)
    return [
        (INTEREST_ACCOUNT, f"-{funder}", "na = 0"),
        ("'interest_spread_income'", f"-(({amount}) - {funder})", "na = 0"),
        ("'interest_suspense'", f"-({amount})", "na = 1"),
    ]


UNPAID = "(principal - principal_paid) + (interest - interest_paid) + (fee - fee_paid) > 0"
BUCKET_SQL = (
    "CASE WHEN {dpd} > write_off_dpd THEN 'WO' WHEN {dpd} <= 0 THEN 'C' WHEN {dpd} <= 30 THEN 'M1' "
    "WHEN {dpd} <= 60 THEN 'M2' WHEN {dpd} <= 90 THEN 'M3' ELSE 'M4+' END"
)


def closes_month(day: int) -> bool:
    """Closing this day (a day number) ends a month: the month-end steps run."""
    return from_day(day + 1).day == 1


@dataclass
class DayContext:
    conn: Connection
    day: int  # the day being closed, as a day number
    params: dict[str, object]
    temps: list[str] = field(default_factory=list)

    def run(self, sql: str, **extra: object) -> int:
        result = self.conn.execute(text(sql), {**self.params, **extra})
        return result.rowcount if result.rowcount is not None else 0

    def temp(self, name: str, select_sql: str) -> int:
        """Materialise the step's working set for this transaction only; returns its size."""
        if self.conn.dialect.name == "postgresql":
            self.conn.execute(text(f"CREATE TEMP TABLE {name} ON COMMIT DROP AS {select_sql}"), self.params)
        else:
            self.conn.execute(text(f"CREATE TEMP TABLE {name} AS {select_sql}"), self.params)
            self.temps.append(name)
        return self.conn.execute(text(f"SELECT COUNT(*) FROM {name}")).scalar_one()

    def drop_temps(self) -> None:
        for name in self.temps:
            self.conn.execute(text(f"DROP TABLE {name}"))

    def entry(self, kind: str) -> int:
        return self.conn.execute(
            insert(servicing_tables.journal_entries)
            .values(loan_id=None, business_day=self.day, kind=kind, transaction_id=None, created_at=now_iso())
            .returning(servicing_tables.journal_entries.c.id)
        ).scalar_one()

    def lines(self, kind: str, source: str, parts: list[tuple[str, str, str]]) -> None:
        """Post one batch entry: for every row of `source`, one line per (account SQL, amount SQL, filter)."""
        entry_id = self.entry(kind)
        selects = [
            f"SELECT {entry_id}, loan_id, {account}, {amount} FROM {source} WHERE ({amount}) <> 0"
            + (f" AND {where}" if where else "")
            for account, amount, where in parts
        ]
        self.run("INSERT INTO journal_lines (entry_id, loan_id, account, amount) " + " UNION ALL ".join(selects))

    def outbox(self, event_type: str, source: str, payload_sql: str, where: str = "") -> None:
        self.run(
            f"INSERT INTO outbox (business_day, event_type, loan_id, payload, published) "
            f"SELECT :n, '{event_type}', loan_id, {payload_sql}, :no FROM {source}"
            + (f" WHERE {where}" if where else "")
        )


def step_due(ctx: DayContext) -> int:
    count = ctx.temp(
        "eod_due",
        f"""
        SELECT i.loan_id, i.seq, i.interest, i.fee, i.fee_amortisation AS fa, l.bal_interest_accrued AS accrued,
               CASE WHEN l.business_model = 'capital-heavy' AND l.guarantee_paid = :no
                    THEN (2 * i.fee * l.guarantee_share_ppm + 1000000) / 2000000 ELSE 0 END AS gfee,
               {PLATFORM_INTEREST},
               (SELECT MAX(j.seq) FROM installments j WHERE j.loan_id = i.loan_id) AS last_seq
        FROM installments i JOIN loans l ON l.id = i.loan_id
        WHERE i.due_day = :n AND i.booked = :no AND l.{ACTIVE}""",
    )
    if not count:
        return 0
    ctx.lines(
        "installment_due",
        "eod_due",
        [
            ("'interest_receivable'", "interest", ""),
            ("'interest_accrued'", "-accrued", ""),
            *interest_lines("interest - accrued"),
            ("'fee_receivable'", "fee", ""),
            # A live guarantee's part of the fee (LoanTerms.guarantee_fee) clears its contract asset and is released
            # to income; the rest pays for servicing (in suspense while in non-accrual).
            ("'guarantee_contract_asset'", "-gfee", ""),
            ("'guarantee_liability'", "gfee", ""),
            ("'guarantee_release_income'", "-gfee", ""),
            ("CASE WHEN na = 1 THEN 'fee_suspense' ELSE 'service_fee_income' END", "-(fee - gfee)", ""),
            # A deferred upfront fee earned with the installment (LoanAccount._fee_earned).
            ("'deferred_origination_fee'", "fa", ""),
            ("'facilitation_fee_income'", "-fa", ""),
        ],
    )
    ctx.run("""
        UPDATE loans SET bal_interest_receivable = bal_interest_receivable + d.interest,
            bal_interest_accrued = 0, bal_fee_receivable = bal_fee_receivable + d.fee,
            bal_guarantee_contract_asset = bal_guarantee_contract_asset - d.gfee,
            bal_guarantee_liability = bal_guarantee_liability + d.gfee,
            bal_interest_suspense = bal_interest_suspense - (d.interest - d.accrued) * d.na,
            bal_fee_suspense = bal_fee_suspense - (d.fee - d.gfee) * d.na,
            bal_deferred_origination_fee = bal_deferred_origination_fee + d.fa,
            current_seq = CASE WHEN d.seq < d.last_seq THEN d.seq + 1 ELSE NULL END
        FROM eod_due d WHERE loans.id = d.loan_id""")
    ctx.run(
        "UPDATE installments SET booked = :yes WHERE due_day = :n AND booked = :no "
        "AND loan_id IN (SELECT loan_id FROM eod_due)"
    )
    return count


def step_accrual(ctx: DayContext) -> int:
    if not closes_month(ctx.day):
        return 0
    count = ctx.temp(
        "eod_accrual",
        f"""
        SELECT loan_id, inc, pi, rp, fp, na FROM (
            SELECT l.id AS loan_id, {PLATFORM_INTEREST},
                   (2 * i.interest * (CASE WHEN :n - i.period_start_day < i.due_day - i.period_start_day
                                          THEN :n - i.period_start_day ELSE i.due_day - i.period_start_day END)
                    + (i.due_day - i.period_start_day)) / (2 * (i.due_day - i.period_start_day))
                   - l.bal_interest_accrued AS inc
            FROM loans l JOIN installments i ON i.loan_id = l.id AND i.seq = l.current_seq
            WHERE l.{ACTIVE} AND i.period_start_day < :n) x
        WHERE inc > 0""",
    )
    if count:
        ctx.lines("accrual", "eod_accrual", [("'interest_accrued'", "inc", ""), *interest_lines("inc")])
        ctx.run(
            "UPDATE loans SET bal_interest_accrued = bal_interest_accrued + a.inc, "
            "bal_interest_suspense = bal_interest_suspense - a.inc * a.na "
            "FROM eod_accrual a WHERE loans.id = a.loan_id"
        )
    return count


def step_delinquency(ctx: DayContext) -> int:
    """Days past due, bucket and the day's late fee of every overdue loan, in one pass and one update."""
    ctx.run(f"""
        UPDATE loans SET overdue_since = :d WHERE {ACTIVE} AND overdue_since IS NULL AND id IN (
            SELECT loan_id FROM installments WHERE due_day = :d AND booked = :yes AND {UNPAID})""")
    dpd = "(:n - l.overdue_since)"
    fee = "(2 * o.overdue * l.late_fee_ppm + 1000000) / 2000000"
    room = "(l.late_fee_cap - l.late_fees_charged)"
    count = ctx.temp(
        "eod_delinquent",
        f"""
        SELECT l.id AS loan_id, {dpd} AS dpd, l.bucket AS old_bucket, {BUCKET_SQL.format(dpd=dpd)} AS new_bucket,
               CASE WHEN {dpd} > l.non_accrual_dpd THEN 1 ELSE 0 END AS na,
               CASE WHEN {dpd} <= l.grace_days OR {room} <= 0 THEN 0
                    WHEN {fee} < {room} THEN {fee} ELSE {room} END AS fee
        FROM loans l JOIN (
            SELECT i.loan_id, CAST(SUM(i.principal - i.principal_paid) AS BIGINT) AS overdue
            FROM installments i JOIN loans m ON m.id = i.loan_id
            WHERE m.overdue_since IS NOT NULL AND m.{ACTIVE} AND i.booked = :yes AND i.due_day <= :d
            GROUP BY i.loan_id) o ON o.loan_id = l.id""",
    )
    if count:
        ctx.lines(
            "late_fee",
            "eod_delinquent",
            [
                ("'penalty_receivable'", "fee", ""),
                ("CASE WHEN na = 1 THEN 'penalty_suspense' ELSE 'late_fee_income' END", "-fee", ""),
            ],
        )
        ctx.outbox(
            "loan.bucket_changed",
            "eod_delinquent",
            '\'{"from": "\' || old_bucket || \'", "to": "\' || new_bucket || \'"}\'',
            "old_bucket <> new_bucket",
        )
        ctx.run("""UPDATE loans SET dpd = x.dpd, bucket = x.new_bucket,
                   bal_penalty_receivable = bal_penalty_receivable + x.fee,
                   bal_penalty_suspense = bal_penalty_suspense - x.fee * x.na,
                   late_fees_charged = late_fees_charged + x.fee
                   FROM eod_delinquent x WHERE loans.id = x.loan_id""")
    return count


def step_payout(ctx: DayContext) -> int:
    count = ctx.temp(
        "eod_payout",
        f"""
        SELECT id AS loan_id, funder, bal_loan_principal + bal_interest_receivable AS payout,
               bal_guarantee_contract_asset AS remaining, bal_guarantee_provision AS gp
        FROM loans WHERE overdue_since IS NOT NULL AND {ACTIVE} AND business_model = 'capital-heavy'
          AND guarantee_paid = :no AND dpd >= guarantee_payout_dpd""",
    )
    if count:
        ctx.lines(
            "guarantee_payout",
            "eod_payout",
            [
                ("'funding_cash'", "payout", ""),
                ("'platform_cash'", "-payout", ""),
                ("'guarantee_liability'", "remaining", ""),
                ("'guarantee_contract_asset'", "-remaining", ""),
                ("'guarantee_provision'", "-gp", ""),
                ("'loan_loss_allowance'", "gp", ""),
            ],
        )
        ctx.outbox(
            "loan.guarantee_payout",
            "eod_payout",
            "'{\"institution\": \"' || funder || '\", \"amount\": ' || CAST(payout AS VARCHAR(24)) || '}'",
        )
        ctx.run("""UPDATE loans SET guarantee_paid = :yes, funder = 'platform',
                   bal_guarantee_liability = bal_guarantee_liability + p.remaining,
                   bal_guarantee_contract_asset = bal_guarantee_contract_asset - p.remaining,
                   bal_loan_loss_allowance = bal_loan_loss_allowance + p.gp, bal_guarantee_provision = 0
                   FROM eod_payout p WHERE loans.id = p.loan_id""")
    return count


def step_write_off(ctx: DayContext) -> int:
    count = ctx.temp(
        "eod_write_off",
        f"""
        SELECT id AS loan_id,
               CASE WHEN funder = 'platform' THEN 'credit_loss_expense' ELSE 'institution_credit_loss' END AS loss,
               bal_loan_principal AS p, bal_interest_accrued AS ia, bal_interest_receivable AS ir,
               bal_fee_receivable AS fr, bal_penalty_receivable AS pr, bal_guarantee_contract_asset AS gca,
               bal_loan_loss_allowance AS lla, bal_interest_suspense AS isus, bal_fee_suspense AS fsus,
               bal_penalty_suspense AS psus, bal_deferred_origination_fee AS dfee
        FROM loans WHERE overdue_since IS NOT NULL AND {ACTIVE} AND dpd > write_off_dpd""",
    )
    if count:
        ctx.lines(
            "write_off",
            "eod_write_off",
            [
                ("loss", "p + ia + ir + fr + pr + lla + isus + fsus + psus + dfee", ""),
                ("'loan_principal'", "-p", ""),
                ("'interest_accrued'", "-ia", ""),
                ("'interest_receivable'", "-ir", ""),
                ("'fee_receivable'", "-fr", ""),
                ("'penalty_receivable'", "-pr", ""),
                ("'guarantee_liability'", "gca", ""),
                ("'guarantee_contract_asset'", "-gca", ""),
                ("'loan_loss_allowance'", "-lla", ""),
                ("'interest_suspense'", "-isus", ""),
                ("'fee_suspense'", "-fsus", ""),
                ("'penalty_suspense'", "-psus", ""),
                ("'deferred_origination_fee'", "-dfee", ""),
            ],
        )
        ctx.outbox("loan.written_off", "eod_write_off", "'{\"principal\": ' || CAST(p AS VARCHAR(24)) || '}'")
        ctx.run("""UPDATE loans SET status = 'written_off', closed_day = :d, bucket = 'WO',
                   written_off = w.p + w.ia + w.ir + w.fr + w.pr,
                   bal_loan_principal = 0, bal_interest_accrued = 0, bal_interest_receivable = 0,
                   bal_fee_receivable = 0, bal_penalty_receivable = 0, bal_guarantee_contract_asset = 0,
                   bal_guarantee_liability = bal_guarantee_liability + w.gca, bal_loan_loss_allowance = 0,
                   bal_interest_suspense = 0, bal_fee_suspense = 0, bal_penalty_suspense = 0,
                   bal_deferred_origination_fee = 0
                   FROM eod_write_off w WHERE loans.id = w.loan_id""")
    return count


def step_provision(ctx: DayContext) -> int:
    """On a month's last day, true up each live guarantee's provision to rate(bucket) x what a payout would pay
    (principal and interest due), half-up."""
    if not closes_month(ctx.day):
        return 0
    rate = (
        f"CASE {BUCKET_SQL.format(dpd='dpd')} "
        + " ".join(
            f"WHEN '{bucket}' THEN {column}"
            for bucket, column in zip(PROVISION_BUCKETS, servicing_tables.PROVISION_RATE_COLUMNS, strict=True)
        )
        + " END"
    )
    count = ctx.temp(
        "eod_provision",
        f"""
        SELECT loan_id, target + held AS delta FROM (
            SELECT id AS loan_id, (2 * (bal_loan_principal + bal_interest_receivable) * {rate} + 1000000) / 2000000
                   AS target,
                   bal_guarantee_provision AS held
            FROM loans WHERE {ACTIVE} AND business_model = 'capital-heavy' AND guarantee_paid = :no) x
        WHERE target + held <> 0""",
    )
    if count:
        ctx.lines(
            "provision",
            "eod_provision",
            [("'provision_expense'", "delta", ""), ("'guarantee_provision'", "-delta", "")],
        )
        ctx.run(
            "UPDATE loans SET bal_guarantee_provision = bal_guarantee_provision - p.delta "
            "FROM eod_provision p WHERE loans.id = p.loan_id"
        )
    return count


def step_snapshot(ctx: DayContext) -> int:
    """On a month's last day, keep each open loan's delinquency for vintages and roll rates."""
    if not closes_month(ctx.day):
        return 0
    return ctx.run("""
        INSERT INTO portfolio_snapshots (as_of_day, loan_id, status, funder, dpd, bucket, principal_outstanding,
                                         interest_receivable)
        SELECT :d, id, status, funder, dpd, bucket, bal_loan_principal, bal_interest_receivable FROM loans
        WHERE status = 'active' OR closed_day > :d - 31""")


def step_advance(ctx: DayContext) -> int:
    ctx.run("UPDATE business_calendar SET business_day = :n, eod_day = NULL WHERE id = 1")
    return 1
