"""Password hashing with argon2id (argon2-cffi's recommended parameters).

The functions are synchronous and take tens of milliseconds by design; async
callers run them in a thread (`asyncio.to_thread`), where argon2 releases the GIL.
"""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True if `password` matches; False for a wrong password or an unusable hash.

    With no hash (unknown user, or an account without a password) a dummy hash
    is verified anyway, so the answer takes as long as for a real account.
    """
    try:
        ok = _hasher.verify(password_hash or _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
    return ok and password_hash is not None


def needs_rehash(password_hash: str) -> bool:
    """True if the hash was made with weaker parameters than the current ones."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@cache
def _dummy_hash() -> str:
    return _hasher.hash("takt-dummy-password-for-timing")
