"""Where a loan's money comes from, as the funding disclosures class it: written once here, and the analytics SQL is
generated from these constants.

A loan's `funder` says who holds it today: an institution's code, `platform` (on the platform's own balance sheet, or
a capital-heavy loan after the platform paid out its guarantee), or an asset-backed securities deal's funder
(`ABS:<deal name>`) once the loan was sold into a deal's pool. An institution whose definition says it is a trust
(`kind`, `openice.matching.institutions.InstitutionKind`) funds through its trust plans: its loans are a source of
their own; an institution of any other kind, or of none stated, counts as an institution. A trust the platform
consolidates books its loans to `platform`, and counts as platform capital.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from openice.servicing.loan import DEAL_FUNDER_PREFIX, PLATFORM, BusinessModel, is_deal_funder

# The channel of a loan the open platform matched to an institution whose credit box took it (the Intelligence
# Credit Engine): matching books every loan it routes under it.
ICE_CHANNEL = "matching"


# The institution kind whose loans are the `trust` source.
TRUST_KIND = "trust"


class FundingSource(StrEnum):
    INSTITUTION = "institution"  # an institution funds it (capital-light, capital-heavy before a payout, technology)
    TRUST = "trust"  # an institution of kind trust funds it, through its trust plans
    PLATFORM_CAPITAL = "platform-capital"  # the platform's own capital: on balance sheet, or a guarantee paid out
    ABS_DEAL = "abs-deal"  # sold into an asset-backed securities deal's pool


def funding_source(funder: str, kind: str | None = None) -> FundingSource:
    """The class of a funder code; `kind`: the institution's of that code, if it is one and states it."""
    if funder == PLATFORM:
        return FundingSource.PLATFORM_CAPITAL
    if is_deal_funder(funder):
        return FundingSource.ABS_DEAL
    return FundingSource.TRUST if kind == TRUST_KIND else FundingSource.INSTITUTION


def deal_cost_ppm(tranches: Iterable[tuple[int, str | None]]) -> int | None:
    """An asset-backed deal's annual funding cost in parts per million: its notes' coupons weighted by their balances
    (each tranche's balance and coupon as a decimal string), rounded half-up to the whole ppm. The residual tranche has
    no coupon and is left out of the weights: its holder (the platform, as a rule) takes what the waterfall leaves
    rather than a rate, so it is not a cost of the money the notes raised. None for a deal without notes."""
    notes = [(balance, Decimal(coupon)) for balance, coupon in tranches if coupon is not None]
    weight = sum(balance for balance, _ in notes)
    if not weight:
        return None
    cost = sum((balance * coupon for balance, coupon in notes), Decimal(0)) * 1_000_000 / weight
    return int(cost.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def funding_source_sql(funder: str, kind: str = "NULL") -> str:
    """`funding_source` as a SQL expression on a funder column and the kind of the institution of that code (NULL
    when there is none)."""
    return (
        f"CASE WHEN {funder} = '{PLATFORM}' THEN '{FundingSource.PLATFORM_CAPITAL}' "
        f"WHEN {funder} LIKE '{DEAL_FUNDER_PREFIX}%' THEN '{FundingSource.ABS_DEAL}' "
        f"WHEN {kind} = '{TRUST_KIND}' THEN '{FundingSource.TRUST}' "
        f"ELSE '{FundingSource.INSTITUTION}' END"
    )


class PlatformModel(StrEnum):
    """The disclosures' split of the book by what the platform does for a loan: capital-light loans the open platform
    matched (ICE) are set apart from the other capital-light ones, and both capital-heavy models go together; each
    loan falls in exactly one."""

    CAPITAL_LIGHT = "capital-light"
    ICE = "ice"
    TECHNOLOGY = "technology"
    CAPITAL_HEAVY = "capital-heavy"  # guaranteed, or on the platform's balance sheet


# The models whose share of the balance the disclosures give together: the platform bears no credit risk on them.
RISK_FREE_MODELS = (PlatformModel.CAPITAL_LIGHT, PlatformModel.ICE, PlatformModel.TECHNOLOGY)


def platform_model(business_model: str, channel: str) -> PlatformModel:
    """The class of a loan by its business model and the channel it came through."""
    if business_model == BusinessModel.CAPITAL_LIGHT:
        return PlatformModel.ICE if channel == ICE_CHANNEL else PlatformModel.CAPITAL_LIGHT
    if business_model == BusinessModel.TECHNOLOGY:
        return PlatformModel.TECHNOLOGY
    return PlatformModel.CAPITAL_HEAVY


def platform_model_sql(business_model: str, channel: str) -> str:
    """`platform_model` as a SQL expression on the business model and channel columns."""
    return (
        f"CASE WHEN {business_model} = '{BusinessModel.CAPITAL_LIGHT}' THEN "
        f"CASE WHEN {channel} = '{ICE_CHANNEL}' THEN '{PlatformModel.ICE}' ELSE '{PlatformModel.CAPITAL_LIGHT}' END "
        f"WHEN {business_model} = '{BusinessModel.TECHNOLOGY}' THEN '{PlatformModel.TECHNOLOGY}' "
        f"ELSE '{PlatformModel.CAPITAL_HEAVY}' END"
    )
