import pytest
from cryptography.exceptions import InvalidTag

from openice.decisioning.pii import ENV_KEY, PiiVault, new_key, parse_key
from openice.errors import ValidationError


def test_encryption_round_trips_and_never_repeats() -> None:
    vault = PiiVault(bytes(32))
    a, b = vault.encrypt("national_id", "11010519491231002X"), vault.encrypt("national_id", "11010519491231002X")
    assert a != b and "11010519491231002X" not in a
    assert vault.decrypt("national_id", a) == "11010519491231002X"


def test_a_ciphertext_moved_to_another_column_does_not_decrypt() -> None:
    vault = PiiVault(bytes(32))
    with pytest.raises(InvalidTag):
        vault.decrypt("mobile", vault.encrypt("national_id", "x"))


def test_keyed_hashes_match_equal_values_under_one_key_only() -> None:
    one, other = PiiVault(bytes(32)), PiiVault(bytes(range(32)))
    assert one.keyed_hash("mobile", "13812345678") == one.keyed_hash("mobile", "13812345678")
    assert one.keyed_hash("mobile", "13812345678") != other.keyed_hash("mobile", "13812345678")
    assert one.keyed_hash("mobile", "1") != one.keyed_hash("device", "1")


def test_key_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_KEY, raising=False)
    with pytest.raises(ValidationError, match="not set"):
        PiiVault.from_env()
    monkeypatch.setenv(ENV_KEY, new_key())
    assert PiiVault.from_env().keyed_hash("a", "b")
    assert len(parse_key("00" * 32)) == 32
    with pytest.raises(ValidationError):
        parse_key("short")
