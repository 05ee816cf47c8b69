"""Tables of the decisioning and fund-matching stage, on the shared `metadata` so Alembic sees them.

Personal data is stored only encrypted (`*_enc`, AES-GCM) beside keyed hashes (`*_hash`, HMAC-SHA256)
that let records be matched without decrypting. Decisions are written once and never updated.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, String, Table, Text, UniqueConstraint

from openice.storage.columns import Day, Id, Money, metadata

pii_key_check = Table(
    "pii_key_check",
    metadata,
    Column("id", Integer, primary_key=True),  # one row: the key the personal data is encrypted with
    Column("check_value", String(64), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("hash_check_value", String(64), nullable=True),  # the hashing key's, once known
    Column("rotating_to", String(64), nullable=True),  # set while a rotation to that key is under way
)

borrowers = Table(
    "borrowers",
    metadata,
    Column("id", Text, primary_key=True),
    Column("registered_day", Day, nullable=False),
    Column("registered_at", BigInteger, nullable=False),  # epoch seconds, for 24-hour windows
    Column("name_enc", Text, nullable=False),
    Column("national_id_enc", Text, nullable=False),
    Column("mobile_enc", Text, nullable=False),
    Column("date_of_birth_enc", Text, nullable=False),
    Column("name_hash", String(64), nullable=False),
    Column("national_id_hash", String(64), nullable=False, index=True),
    Column("mobile_hash", String(64), nullable=False, index=True),
    Column("device_hash", String(64), nullable=False, index=True),
    Column("birth_year", Integer, nullable=False),  # enough for cohorts without decrypting
    Column("province", String(32), nullable=False),
    Column("city", String(32), nullable=False),
)

applications = Table(
    "applications",
    metadata,
    Column("id", Text, primary_key=True),
    Column("borrower_id", Text, nullable=False, index=True),
    Column("product_code", String(64), nullable=False),
    Column("applied_day", Day, nullable=False),
    Column("applied_at", BigInteger, nullable=False),
    Column("national_id_hash", String(64), nullable=False),
    Column("mobile_hash", String(64), nullable=False),
    Column("device_hash", String(64), nullable=False),
    Column("payload", Text, nullable=False),  # JSON of the validated application (no personal data)
    Index("ix_applications_id_time", "national_id_hash", "applied_at"),
    Index("ix_applications_mobile_time", "mobile_hash", "applied_at"),
    Index("ix_applications_device_time", "device_hash", "applied_at"),
)

decisions = Table(
    "decisions",
    metadata,
    Column("id", Text, primary_key=True),
    Column("application_id", Text, nullable=False, unique=True),
    Column("borrower_id", Text, nullable=False, index=True),
    Column("decided_day", Day, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("fraud", String(16), nullable=False),
    Column("pd", Float, nullable=True),
    Column("score", Float, nullable=True),
    Column("grade", String(8), nullable=True),
    Column("model_hash", String(64), nullable=False),
    Column("anomaly_model_hash", String(64), nullable=False),
    Column("policy_hash", String(64), nullable=False),
    Column("input_hash", String(64), nullable=False),
    Column("inputs", Text, nullable=False),  # JSON: everything `assess` read
    Column("policy", Text, nullable=False),  # JSON of the policy in force
    Column("rules_fired", Text, nullable=False),  # JSON list of rule names
    Column("reasons", Text, nullable=False),  # JSON list
    Column("result", Text, nullable=False),  # JSON of the whole decision
    Column("created_at", String(32), nullable=False),
)

credit_lines = Table(
    "credit_lines",
    metadata,
    Column("id", Text, primary_key=True),
    Column("borrower_id", Text, nullable=False, index=True),
    Column("decision_id", Text, nullable=False, unique=True),
    Column("product_code", String(64), nullable=False),
    Column("approved_day", Day, nullable=False),
    Column("expiry_day", Day, nullable=False),
    Column("status", String(16), nullable=False),  # active | expired | frozen
    Column("amount", Money, nullable=False),
    Column("drawn", Money, nullable=False, default=0),  # reserved or funded; released when nobody funds
    Column("rate_ppm", Integer, nullable=False),
    Column("apr_ppm", Integer, nullable=False),
    Column("max_tenor", Integer, nullable=False),
    Column("grade", String(8), nullable=False),
    Column("pd", Float, nullable=False),
    Column("score", Float, nullable=False),
)

blacklist = Table(
    "blacklist",
    metadata,
    Column("kind", String(16), primary_key=True),  # national_id | mobile | device
    Column("value_hash", String(64), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("added_day", Day, nullable=False),
)

institutions = Table(
    "institutions",
    metadata,
    Column("code", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("business_model", String(32), nullable=False),
    Column("funding_cost_ppm", Integer, nullable=False),  # annual
    Column("rate_ppm", Integer, nullable=False),  # the annual yield it takes on what it funds
    Column("credit_box", Text, nullable=False),  # JSON
    Column("daily_quota", Money, nullable=False),
    Column("monthly_quota", Money, nullable=False),
    Column("min_monthly_volume", Money, nullable=False),
    Column("max_avg_pd", Float, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("guarantee_payout_dpd", Integer, nullable=True),
    Column("active", Integer, nullable=False, default=1),
    Column("definition", Text, nullable=False),  # JSON of the whole validated definition
    Column("kind", String(32), nullable=True),  # bank | consumer-finance | trust | microcredit; NULL: not stated
)

quota_usage = Table(
    "quota_usage",
    metadata,
    Column("institution_code", Text, primary_key=True),
    Column("period", String(1), primary_key=True),  # D (day) | M (month)
    Column("period_day", Day, primary_key=True),  # the day, or the month's first day
    Column("used", Money, nullable=False, default=0),
    Column("quota", Money, nullable=False),
)

drawdowns = Table(
    "drawdowns",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("line_id", Text, nullable=False, index=True),
    Column("borrower_id", Text, nullable=False, index=True),
    Column("amount", Money, nullable=False),
    Column("tenor", Integer, nullable=False),
    Column("requested_day", Day, nullable=False),
    Column("status", String(16), nullable=False),  # routing | offered | funded | no_funder | failed
    Column("institution_code", Text, nullable=True),
    Column("loan_id", BigInteger, nullable=True),
    Column("reasons", Text, nullable=True),  # JSON: why each institution did not fund
)

offers = Table(
    "offers",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("drawdown_id", BigInteger, nullable=False, index=True),
    Column("institution_code", Text, nullable=False),
    Column("rank", Integer, nullable=False),
    Column("expected_margin", Money, nullable=False),
    Column("status", String(16), nullable=False),  # sent | accepted | declined | expired | failed
    Column("reason", Text, nullable=True),
    Column("report", Text, nullable=False),  # JSON of the pre-loan investigation report
    Column("created_at", String(32), nullable=False),
    Column("expires_at", String(32), nullable=True),  # manual institutions: unanswered by then, it is re-routed
    Column("answered_at", String(32), nullable=True),
    UniqueConstraint("drawdown_id", "institution_code", name="uq_offers_drawdown_institution"),
    Index("ix_offers_status_expires", "status", "expires_at"),
)

matching_runs = Table(
    "matching_runs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("run_day", Day, nullable=False),
    Column("drawdowns", Integer, nullable=False),
    Column("objective", Money, nullable=False),
    Column("greedy_objective", Money, nullable=False),
    Column("prices", Text, nullable=False),  # JSON institution -> shadow price per unit amount
    Column("created_at", String(32), nullable=False),
)
