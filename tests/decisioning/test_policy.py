"""The credit policy file: its amounts typed in major units of its currency, stored and hashed in minor units."""

from pathlib import Path

import pytest

from openice.decisioning.policy import Policy, TypedPolicy
from openice.errors import ValidationError
from openice.servicing.products import demo_products


def load(tmp_path: Path, text: str) -> Policy:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return Policy.load(path)


def test_a_policy_file_types_its_amounts_in_major_units_of_its_currency(tmp_path: Path) -> None:
    policy = load(tmp_path, "currency: CNY\nmin_line: '500.00'\nmax_line: '25000.00'\nmin_residual_income: '2000.50'\n")
    # 500.00 yuan is 50,000 fen; 25,000.00 is 2,500,000; 2,000.50 is 200,050
    assert (policy.currency, policy.min_line, policy.max_line, policy.min_residual_income) == (
        "CNY",
        50_000,
        2_500_000,
        200_050,
    )
    typed = TypedPolicy.of(policy)
    assert (typed.min_line, typed.max_line, typed.min_residual_income) == ("500.00", "25000.00", "2000.50")
    assert typed.in_minor() == policy
    assert load(tmp_path, "currency: JPY\nmin_line: '5000'\n").min_line == 5_000  # the yen has no minor unit


def test_a_policy_without_amounts_needs_no_currency_and_hashes_as_before(tmp_path: Path) -> None:
    """A policy typing no amount keeps the built-in ones (minor units of the product's currency), and its hash
    leaves the absent currency out: decisions stored under it keep their hash."""
    assert load(tmp_path, "max_pd: 0.2\n").policy_hash == Policy(max_pd=0.2).policy_hash
    assert load(tmp_path, "").policy_hash == Policy().policy_hash
    stored = Policy().model_dump(mode="json")  # as a decision stores it: currency null
    assert Policy.from_json(stored).policy_hash == Policy().policy_hash
    assert Policy.from_json({k: v for k, v in stored.items() if k != "currency"}) == Policy()  # stored before it
    assert load(tmp_path, "currency: CNY\nmin_line: '1000.00'\n").policy_hash != Policy().policy_hash


@pytest.mark.parametrize(
    ("text", "field", "said"),
    [
        ("currency: CNY\nmin_line: 50000\n", "min_line", "must be a decimal string in major units"),
        ("currency: CNY\nmax_line: 25000.5\n", "max_line", "must be a decimal string in major units"),
        ("currency: CNY\nmin_line: '500.001'\n", "min_line", "has more decimals than CNY allows (2)"),
        ("currency: CNY\nmin_line: '0.00'\n", "min_line", "is not from 0.01 CNY"),
        ("currency: CNY\nmin_residual_income: '-1.00'\n", "min_residual_income", "is not from 0.00 CNY"),
        ("min_line: '500.00'\n", "currency", "is required with min_line"),
        ("currency: XXX\nmin_line: '500.00'\n", "currency", "unsupported currency 'XXX'"),
        ("currency: cny\n", "currency", "should match pattern"),
    ],
)
def test_a_bad_amount_is_refused_naming_its_field(tmp_path: Path, text: str, field: str, said: str) -> None:
    with pytest.raises(ValidationError) as refused:
        load(tmp_path, text)
    assert refused.value.field == field and said in refused.value.message, refused.value.message


def test_a_policy_in_one_currency_sizes_no_line_in_another() -> None:
    cash = next(p for p in demo_products() if p.currency == "CNY")
    Policy(currency="CNY").check_currency(cash)
    Policy().check_currency(cash)  # the built-in amounts apply to any product
    with pytest.raises(ValidationError, match=f"amounts are in JPY; product {cash.code} lends in CNY") as refused:
        Policy(currency="JPY").check_currency(cash)
    assert refused.value.field == "currency"
    with pytest.raises(ValidationError, match="typed in its currency"):  # amounts of its own, in no currency
        TypedPolicy.of(Policy(min_line=50_000))
