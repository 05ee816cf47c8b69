"""Identity document checks and masking: pure functions, no I/O.

A mainland resident ID number is 17 digits and a check character (ISO 7064 MOD 11-2); digits 7-14
are the holder's birth date, which must be a real date and agree with the date the applicant states.
"""

from __future__ import annotations

import re
from datetime import date

from openice.errors import ValidationError

ID_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
ID_CHECK = "10X98765432"
# The first two digits name a province-level division (GB/T 2260).
PROVINCE_PREFIXES = frozenset(
    {
        "11",
        "12",
        "13",
        "14",
        "15",
        "21",
        "22",
        "23",
        "31",
        "32",
        "33",
        "34",
        "35",
        "36",
        "37",
        "41",
        "42",
        "43",
        "44",
        "45",
        "46",
        "50",
        "51",
        "52",
        "53",
        "54",
        "61",
        "62",
        "63",
        "64",
        "65",
        "71",
        "81",
        "82",
    }
)
MOBILE = re.compile(r"^1[3-9]\d{9}$")


def id_check_char(first17: str) -> str:
    """The MOD 11-2 check character of the first 17 digits."""
    return ID_CHECK[sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]


def normalise_id(number: str) -> str:
    return number.strip().upper()


def check_resident_id(number: str, date_of_birth: date | None = None, today: date | None = None) -> date:
    """Validate an 18-character resident ID number; returns the birth date it encodes."""
    number = normalise_id(number)
    if len(number) != 18 or not number[:17].isdigit() or not (number[17].isdigit() or number[17] == "X"):
        raise ValidationError("a resident ID number is 17 digits and a digit or X", field="national_id")
    if number[:2] not in PROVINCE_PREFIXES:
        raise ValidationError(f"region code {number[:6]} names no province", field="national_id")
    if id_check_char(number[:17]) != number[17]:
        raise ValidationError("check character does not match (ISO 7064 MOD 11-2)", field="national_id")
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise ValidationError(f"encodes an impossible birth date {number[6:14]}", field="national_id") from None
    if born.year < 1900 or born > (today or date.today()):
        raise ValidationError(f"encodes an implausible birth date {born}", field="national_id")
    if date_of_birth is not None and born != date_of_birth:
        raise ValidationError(f"encodes birth date {born}, not the stated {date_of_birth}", field="date_of_birth")
    return born


def normalise_mobile(number: str) -> str:
    digits = re.sub(r"[\s-]", "", number)
    return digits[3:] if digits.startswith("+86") else digits


def check_mobile(number: str) -> str:
    """A mainland mobile number: 11 digits starting 13-19 (an optional +86 is dropped)."""
    digits = normalise_mobile(number)
    if not MOBILE.match(digits):
        raise ValidationError("a mobile number is 11 digits starting with 13-19", field="mobile")
    return digits


def age_on(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def mask_id(number: str) -> str:
    return number[:3] + "*" * (len(number) - 7) + number[-4:] if len(number) > 7 else "*" * len(number)


def mask_mobile(number: str) -> str:
    return number[:3] + "****" + number[-4:] if len(number) >= 8 else "*" * len(number)


def mask_name(name: str) -> str:
    return name[:1] + "*" * max(len(name) - 1, 1)
