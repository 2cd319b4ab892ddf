from __future__ import annotations

from argon2 import PasswordHasher

from app.security.passwords import hash_password, needs_rehash, verify_password


def test_hash_verifies_the_right_password_only() -> None:
    hashed = hash_password("s3cret-enough")
    assert hashed.startswith("$argon2id$")
    assert verify_password(hashed, "s3cret-enough")
    assert not verify_password(hashed, "s3cret-enougH")


def test_same_password_hashes_differently() -> None:
    assert hash_password("same") != hash_password("same")


def test_missing_or_garbage_hash_never_verifies() -> None:
    assert not verify_password(None, "anything")
    assert not verify_password(None, "takt-dummy-password-for-timing")
    assert not verify_password("not-a-hash", "anything")


def test_needs_rehash_for_weaker_parameters() -> None:
    assert not needs_rehash(hash_password("pw"))
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("pw")
    assert needs_rehash(weak)
    assert needs_rehash("garbage")
