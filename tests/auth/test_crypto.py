from __future__ import annotations

import os

import pytest

from app.security.crypto import DataCipher, UndecryptableData, fingerprint

OLD, NEW = os.urandom(32), os.urandom(32)


def test_round_trip() -> None:
    cipher = DataCipher([NEW])
    sealed = cipher.encrypt(b"+49 170 1234567")
    assert cipher.decrypt(sealed) == b"+49 170 1234567"
    assert b"1234567" not in sealed


def test_layout_is_version_fingerprint_nonce_ciphertext() -> None:
    sealed = DataCipher([NEW]).encrypt(b"abc")
    assert sealed[0] == 1
    assert sealed[1:5] == fingerprint(NEW)
    assert len(sealed) == 1 + 4 + 12 + 3 + 16


def test_same_plaintext_encrypts_differently() -> None:
    cipher = DataCipher([NEW])
    assert cipher.encrypt(b"x") != cipher.encrypt(b"x")


def test_contact_json_round_trip() -> None:
    cipher = DataCipher([NEW])
    contact = {"phone": "+49 170 1234567", "email": "ada@example.com"}
    assert cipher.decrypt_json(cipher.encrypt_json(contact)) == contact


def test_rotation_with_two_keys() -> None:
    sealed_old = DataCipher([OLD]).encrypt(b"data")
    both = DataCipher([NEW, OLD])
    assert both.decrypt(sealed_old) == b"data"
    assert both.needs_rotation(sealed_old)

    rotated = both.rotate(sealed_old)
    assert rotated[1:5] == fingerprint(NEW)
    assert not both.needs_rotation(rotated)
    assert both.rotate(rotated) is rotated
    # Once everything is rotated the old key can be dropped.
    assert DataCipher([NEW]).decrypt(rotated) == b"data"
    with pytest.raises(UndecryptableData, match="unknown data key"):
        DataCipher([NEW]).decrypt(sealed_old)


@pytest.mark.parametrize("position", [0, 1, 6, 20, -1])
def test_tampering_is_detected(position: int) -> None:
    cipher = DataCipher([NEW, OLD])
    sealed = bytearray(cipher.encrypt(b"operator contact"))
    sealed[position] ^= 0x01
    with pytest.raises(UndecryptableData):
        cipher.decrypt(bytes(sealed))


def test_truncated_ciphertext_is_refused() -> None:
    cipher = DataCipher([NEW])
    with pytest.raises(UndecryptableData):
        cipher.decrypt(cipher.encrypt(b"abc")[:20])


def test_context_binds_ciphertext_to_its_row() -> None:
    cipher = DataCipher([NEW])
    sealed = cipher.encrypt(b"secret", context=b"api_key:tk_1")
    assert cipher.decrypt(sealed, context=b"api_key:tk_1") == b"secret"
    with pytest.raises(UndecryptableData):
        cipher.decrypt(sealed, context=b"api_key:tk_2")


@pytest.mark.parametrize("keys", [[], [b"short"], [NEW, NEW]])
def test_bad_key_sets_are_refused(keys: list[bytes]) -> None:
    with pytest.raises(ValueError):
        DataCipher(keys)
