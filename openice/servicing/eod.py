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
from openice.money import mul_div_half_up_sql
from openice.servicing import ledger, settlement
from openice.servicing.buckets import WRITTEN_OFF, bucket_sql
from openice.servicing.ledger import sql_name as account
from openice.servicing.loan import PLATFORM
from openice.servicing.products import PPM, PROVISION_BUCKETS
from openice.servicing.repository import Outbox, SettlementRepository
from openice.storage import servicing_tables
from openice.storage.days import from_day

ACTIVE = "status = 'active'"
# The working tables carry pi (the guarantee was paid out), rp (the borrower's rate), fp (the funder's) and na
# (non-accrual) for the interest's lines.
PLATFORM_INTEREST = (
    "CASE WHEN l.guarantee_paid = :yes THEN 1 ELSE 0 END AS pi, l.rate_ppm AS rp, "
    "l.funder_rate_ppm AS fp, CASE WHEN l.dpd > l.non_accrual_dpd THEN 1 ELSE 0 END AS na"
)


def funder_interest(amount: str) -> str:
    """The funder's part of a non-negative interest amount, half-up, exactly as `LoanTerms.funder_interest` (all of
    it after a payout, as `LoanAccount._interest_income`)."""
    return f"(CASE WHEN pi = 1 OR fp >= rp THEN {amount} ELSE {mul_div_half_up_sql(amount, 'fp', 'rp')} END)"


def interest_lines(amount: str) -> list[tuple[str, str, str]]:
    """The credit lines of `amount` of interest earned by the calendar, as `LoanAccount._interest_billed`: the
    funder's (or the platform's after a payout) and the platform's spread, or all of it in suspense while the loan
    is in non-accrual (na)."""
    funder = funder_interest(amount)
    return [
        (ledger.FUNDER_INTEREST.sql("pi = 1"), f"-{funder}", "na = 0"),
        (account(ledger.INTEREST_SPREAD_INCOME), f"-(({amount}) - {funder})", "na = 0"),
        (account(ledger.INTEREST_SUSPENSE), f"-({amount})", "na = 1"),
    ]


UNPAID = "(principal - principal_paid) + (interest - interest_paid) + (fee - fee_paid) > 0"


def closes_month(day: int) -> bool:
    """Closing this day (a day number) ends a month: the month-end steps run."""
    return from_day(day + 1).day == 1


@dataclass
class DayContext:
    """One step's transaction of end of day: its statements, working tables, batch journal entries and events."""

    conn: Connection
    day: int  # the day being closed, as a day number
    params: dict[str, object]
    temps: list[str] = field(default_factory=list)

    def run(self, sql: str, **extra: object) -> int:
        result = self.conn.execute(text(sql), {**self.params, **extra})
        return result.rowcount if result.rowcount is not None else 0

    def temp(self, name: str, select_sql: str, **extra: object) -> int:
        """Materialise the step's working set for this transaction only; returns its size."""
        params = {**self.params, **extra}
        if self.conn.dialect.name == "postgresql":
            self.conn.execute(text(f"CREATE TEMP TABLE {name} ON COMMIT DROP AS {select_sql}"), params)
        else:
            self.conn.execute(text(f"CREATE TEMP TABLE {name} AS {select_sql}"), params)
            self.temps.append(name)
        return int(self.conn.execute(text(f"SELECT COUNT(*) FROM {name}")).scalar_one())

    def drop_temps(self) -> None:
        for name in self.temps:
            self.conn.execute(text(f"DROP TABLE {name}"))

    def entry(self, kind: str) -> int:
        return int(
            self.conn.execute(
                insert(servicing_tables.journal_entries)
                .values(loan_id=None, business_day=self.day, kind=kind, transaction_id=None, created_at=now_iso())
                .returning(servicing_tables.journal_entries.c.id)
            ).scalar_one()
        )

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
            f"INSERT INTO outbox (business_day, event_type, loan_id, funder, payload, published) "
            f"SELECT :n, '{event_type}', loan_id, (SELECT l.funder FROM loans l WHERE l.id = {source}.loan_id), "
            f"{payload_sql}, :no FROM {source}" + (f" WHERE {where}" if where else "")
        )


def step_due(ctx: DayContext) -> int:
    count = ctx.temp(
        "eod_due",
        f"""
        SELECT i.loan_id, i.seq, i.interest, i.fee, i.fee_amortisation AS fa, l.bal_interest_accrued AS accrued,
               CASE WHEN l.business_model = 'capital-heavy' AND l.guarantee_paid = :no
                    THEN {mul_div_half_up_sql("i.fee", "l.guarantee_share_ppm", PPM)} ELSE 0 END AS gfee,
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
            (account(ledger.INTEREST_RECEIVABLE), "interest", ""),
            (account(ledger.INTEREST_ACCRUED), "-accrued", ""),
            *interest_lines("interest - accrued"),
            (account(ledger.FEE_RECEIVABLE), "fee", ""),
            # A live guarantee's part of the fee (LoanTerms.guarantee_fee) clears its contract asset and is released
            # to income; the rest pays for servicing (in suspense while in non-accrual).
            (account(ledger.GUARANTEE_CONTRACT_ASSET), "-gfee", ""),
            (account(ledger.GUARANTEE_LIABILITY), "gfee", ""),
            (account(ledger.GUARANTEE_RELEASE_INCOME), "-gfee", ""),
            (ledger.FEE_BILLED.sql("na = 1"), "-(fee - gfee)", ""),
            # A deferred upfront fee earned with the installment (LoanAccount._fee_earned).
            (account(ledger.DEFERRED_FEE), "fa", ""),
            (account(ledger.FACILITATION_FEE_INCOME), "-fa", ""),
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
    period = "i.due_day - i.period_start_day"
    elapsed = f"CASE WHEN :n - i.period_start_day < {period} THEN :n - i.period_start_day ELSE {period} END"
    count = ctx.temp(
        "eod_accrual",
        f"""
        SELECT loan_id, inc, pi, rp, fp, na FROM (
            SELECT l.id AS loan_id, {PLATFORM_INTEREST},
                   {mul_div_half_up_sql("i.interest", elapsed, period)} - l.bal_interest_accrued AS inc
            FROM loans l JOIN installments i ON i.loan_id = l.id AND i.seq = l.current_seq
            WHERE l.{ACTIVE} AND i.period_start_day < :n) x
        WHERE inc > 0""",
    )
    if count:
        ctx.lines("accrual", "eod_accrual", [(account(ledger.INTEREST_ACCRUED), "inc", ""), *interest_lines("inc")])
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
    fee = mul_div_half_up_sql("o.overdue", "l.late_fee_ppm", PPM)
    room = "(l.late_fee_cap - l.late_fees_charged)"
    bucket = bucket_sql(dpd, "l.write_off_dpd")
    count = ctx.temp(
        "eod_delinquent",
        f"""
        SELECT l.id AS loan_id, {dpd} AS dpd, l.bucket AS old_bucket, {bucket} AS new_bucket,
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
                (account(ledger.PENALTY_RECEIVABLE), "fee", ""),
                (ledger.PENALTY_BILLED.sql("na = 1"), "-fee", ""),
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
                (account(ledger.FUNDING_CASH), "payout", ""),
                (account(ledger.PLATFORM_CASH), "-payout", ""),
                (account(ledger.GUARANTEE_LIABILITY), "remaining", ""),
                (account(ledger.GUARANTEE_CONTRACT_ASSET), "-remaining", ""),
                (account(ledger.GUARANTEE_PROVISION), "-gp", ""),
                (account(ledger.LOAN_LOSS_ALLOWANCE), "gp", ""),
            ],
        )
        ctx.outbox(
            "loan.guarantee_payout",
            "eod_payout",
            "'{\"institution\": \"' || funder || '\", \"amount\": ' || CAST(payout AS VARCHAR(24)) || '}'",
        )
        ctx.run(
            """UPDATE loans SET guarantee_paid = :yes, funder = :platform,
                   bal_guarantee_liability = bal_guarantee_liability + p.remaining,
                   bal_guarantee_contract_asset = bal_guarantee_contract_asset - p.remaining,
                   bal_loan_loss_allowance = bal_loan_loss_allowance + p.gp, bal_guarantee_provision = 0
                   FROM eod_payout p WHERE loans.id = p.loan_id""",
            platform=PLATFORM,
        )
    return count


def step_write_off(ctx: DayContext) -> int:
    count = ctx.temp(
        "eod_write_off",
        f"""
        SELECT id AS loan_id,
               {ledger.WRITE_OFF_LOSS.sql("funder = :platform")} AS loss,
               bal_loan_principal AS p, bal_interest_accrued AS ia, bal_interest_receivable AS ir,
               bal_fee_receivable AS fr, bal_penalty_receivable AS pr, bal_guarantee_contract_asset AS gca,
               bal_loan_loss_allowance AS lla, bal_interest_suspense AS isus, bal_fee_suspense AS fsus,
               bal_penalty_suspense AS psus, bal_deferred_origination_fee AS dfee
        FROM loans WHERE overdue_since IS NOT NULL AND {ACTIVE} AND dpd > write_off_dpd""",
        platform=PLATFORM,
    )
    if count:
        ctx.lines(
            "write_off",
            "eod_write_off",
            [
                ("loss", "p + ia + ir + fr + pr + lla + isus + fsus + psus + dfee", ""),
                (account(ledger.LOAN_PRINCIPAL), "-p", ""),
                (account(ledger.INTEREST_ACCRUED), "-ia", ""),
                (account(ledger.INTEREST_RECEIVABLE), "-ir", ""),
                (account(ledger.FEE_RECEIVABLE), "-fr", ""),
                (account(ledger.PENALTY_RECEIVABLE), "-pr", ""),
                (account(ledger.GUARANTEE_LIABILITY), "gca", ""),
                (account(ledger.GUARANTEE_CONTRACT_ASSET), "-gca", ""),
                (account(ledger.LOAN_LOSS_ALLOWANCE), "-lla", ""),
                (account(ledger.INTEREST_SUSPENSE), "-isus", ""),
                (account(ledger.FEE_SUSPENSE), "-fsus", ""),
                (account(ledger.PENALTY_SUSPENSE), "-psus", ""),
                (account(ledger.DEFERRED_FEE), "-dfee", ""),
            ],
        )
        ctx.outbox("loan.written_off", "eod_write_off", "'{\"principal\": ' || CAST(p AS VARCHAR(24)) || '}'")
        ctx.run(f"""UPDATE loans SET status = 'written_off', closed_day = :d, bucket = '{WRITTEN_OFF}',
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
        f"CASE {bucket_sql('dpd', 'write_off_dpd')} "
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
            SELECT id AS loan_id,
                   {mul_div_half_up_sql("bal_loan_principal + bal_interest_receivable", rate, PPM)} AS target,
                   bal_guarantee_provision AS held
            FROM loans WHERE {ACTIVE} AND business_model = 'capital-heavy' AND guarantee_paid = :no) x
        WHERE target + held <> 0""",
    )
    if count:
        ctx.lines(
            "provision",
            "eod_provision",
            [(account(ledger.PROVISION_EXPENSE), "delta", ""), (account(ledger.GUARANTEE_PROVISION), "-delta", "")],
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


def step_ledger(ctx: DayContext) -> int:
    """Fold the journal lines written since the last close into the running balances per currency and account
    (`ledger_balances`), so the trial balance reads only the lines after `through_line`. On PostgreSQL the journal is
    locked against writers for the moment it takes to read its end: a line whose id is below that end but whose
    transaction had not committed would otherwise be skipped for good. SQLite has one writer at a time anyway."""
    if ctx.conn.dialect.name == "postgresql":
        ctx.conn.execute(text("LOCK TABLE journal_lines IN SHARE MODE"))
    through = ctx.conn.execute(text("SELECT through_line FROM ledger_checkpoint WHERE id = 1")).scalar_one()
    upto = ctx.conn.execute(text("SELECT COALESCE(MAX(id), 0) FROM journal_lines")).scalar_one()
    if upto <= through:
        return 0
    folded = ctx.run(
        """
        INSERT INTO ledger_balances (currency, account, balance)
        SELECT l.currency, j.account, SUM(j.amount) FROM journal_lines j JOIN loans l ON l.id = j.loan_id
        WHERE j.id > :through AND j.id <= :upto
        GROUP BY l.currency, j.account
        ON CONFLICT (currency, account) DO UPDATE SET balance = ledger_balances.balance + excluded.balance""",
        through=through,
        upto=upto,
    )
    ctx.run("UPDATE ledger_checkpoint SET through_line = :upto WHERE id = 1", upto=upto)
    return folded


def step_statements(ctx: DayContext) -> int:
    """The settlement statements this close makes final: the day's, and on a month's last day the month's, of each
    institution and currency with anything on them. Each is announced once through the outbox
    (`settlement.statement_ready`), which the gateway publishes as `statement.ready`: a statement can be paid once
    its last day is closed, so this is the moment an institution can fetch it and settle."""
    closed = from_day(ctx.day)
    periods = [settlement.Period.DAY] + ([settlement.Period.MONTH] if closes_month(ctx.day) else [])
    outbox, announced = Outbox(ctx.conn), 0
    for period in periods:
        first, last = settlement.period_bounds(period, closed)
        for institution, currency in SettlementRepository(ctx.conn).parties(first, last):
            payload = {
                "institution": institution,
                "currency": currency,
                "statement_id": settlement.statement_id(currency, period, first),
                "period": period.value,
                "from": first.isoformat(),
                "to": last.isoformat(),
            }
            outbox.add(from_day(ctx.day + 1), settlement.READY_EVENT, None, payload)
            announced += 1
    return announced


def step_advance(ctx: DayContext) -> int:
    ctx.run("UPDATE business_calendar SET business_day = :n, eod_day = NULL WHERE id = 1")
    return 1
