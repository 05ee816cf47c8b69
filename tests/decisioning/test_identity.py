from datetime import date

import pytest

from openice.decisioning.identity import (
    age_on,
    check_mobile,
    check_resident_id,
    id_check_char,
    mask_id,
    mask_mobile,
    mask_name,
)
from openice.decisioning.synthetic import resident_id
from openice.errors import ValidationError

VALID = "11010519491231002X"  # the textbook example: Beijing, born 1949-12-31, check character X


def test_valid_numbers_give_their_birth_date() -> None:
    assert check_resident_id(VALID) == date(1949, 12, 31)
    assert check_resident_id(VALID.lower(), date(1949, 12, 31)) == date(1949, 12, 31)
    generated = resident_id("440106", date(1990, 2, 28), 123)
    assert check_resident_id(generated, date(1990, 2, 28)) == date(1990, 2, 28)


def test_check_character_is_iso_7064_mod_11_2() -> None:
    assert id_check_char(VALID[:17]) == "X"
    assert id_check_char("44052418800101001") == "4"


@pytest.mark.parametrize(
    "number, field, words",
    [
        ("110105194912310021", "national_id", "check character"),
        ("11010519491231002", "national_id", "17 digits"),
        ("1101051949123100XX", "national_id", "17 digits"),
        ("99010519491231002X", "national_id", "province"),
        (resident_id("110101", date(1990, 1, 1), 5)[:10] + "0230" + "005" + "0", "national_id", None),
    ],
)
def test_invalid_numbers_are_refused(number: str, field: str, words: str | None) -> None:
    with pytest.raises(ValidationError) as err:
        check_resident_id(number)
    assert err.value.field == field
    if words:
        assert words in err.value.message


def test_impossible_birth_date_with_a_correct_check_character() -> None:
    first17 = "110101" + "19900230" + "005"
    with pytest.raises(ValidationError, match="impossible birth date"):
        check_resident_id(first17 + id_check_char(first17))


def test_future_birth_date_and_disagreeing_stated_date() -> None:
    future = "110101" + "20990101" + "005"
    with pytest.raises(ValidationError, match="implausible"):
        check_resident_id(future + id_check_char(future), today=date(2026, 1, 1))
    with pytest.raises(ValidationError) as err:
        check_resident_id(VALID, date(1950, 1, 1))
    assert err.value.field == "date_of_birth"


def test_mobile_shape() -> None:
    assert check_mobile("138 1234 5678") == "13812345678"
    assert check_mobile("+8615912345678") == "15912345678"
    for bad in ("12812345678", "1381234567", "138123456789", "abc"):
        with pytest.raises(ValidationError):
            check_mobile(bad)


def test_masks_hide_the_middle() -> None:
    assert mask_id(VALID) == "110***********002X"
    assert mask_mobile("13812345678") == "138****5678"
    assert mask_name("Wang Fang") == "W********"
    assert age_on(date(2000, 6, 15), date(2026, 6, 14)) == 25
