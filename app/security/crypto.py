"""AES-256-GCM for personal data at rest, with key rotation.

    ciphertext = version (1 byte) | key fingerprint (4) | nonce (12) | GCM ciphertext + tag

The fingerprint (first 4 bytes of sha256(key)) says which key sealed the data,
so old rows stay readable after a new key is prepended to the key file;
`rotate` re-seals them with the newest key. The header and an optional
`context` (e.g. the row it belongs to) are authenticated as associated data,
so neither can be altered or swapped without decryption failing.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = 1
KEY_BYTES = 32
NONCE_BYTES = 12
FINGERPRINT_BYTES = 4
HEADER_BYTES = 1 + FINGERPRINT_BYTES
MIN_LENGTH = HEADER_BYTES + NONCE_BYTES + 16


class UndecryptableData(ValueError):
    """The ciphertext is corrupt, tampered with, or sealed with an unknown key."""


def fingerprint(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()[:FINGERPRINT_BYTES]


class DataCipher:
    def __init__(self, keys: Sequence[bytes]) -> None:
        """`keys` newest first; the first one encrypts, all of them decrypt."""
        if not keys:
            raise ValueError("at least one data key is needed")
        self._keys: dict[bytes, AESGCM] = {}
        for key in keys:
            if len(key) != KEY_BYTES:
                raise ValueError(f"data keys must be {KEY_BYTES} bytes (AES-256)")
            mark = fingerprint(key)
            if mark in self._keys:
                raise ValueError("two data keys share a fingerprint (duplicate key?)")
            self._keys[mark] = AESGCM(key)
        self._current = fingerprint(keys[0])

    def encrypt(self, plaintext: bytes, *, context: bytes = b"") -> bytes:
        header = bytes([VERSION]) + self._current
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._keys[self._current].encrypt(nonce, plaintext, header + context)
        return header + nonce + sealed

    def decrypt(self, ciphertext: bytes, *, context: bytes = b"") -> bytes:
        if len(ciphertext) < MIN_LENGTH or ciphertext[0] != VERSION:
            raise UndecryptableData("not a Takt ciphertext (bad length or version)")
        header, mark = ciphertext[:HEADER_BYTES], ciphertext[1:HEADER_BYTES]
        aead = self._keys.get(mark)
        if aead is None:
            raise UndecryptableData(f"sealed with an unknown data key ({mark.hex()})")
        nonce = ciphertext[HEADER_BYTES : HEADER_BYTES + NONCE_BYTES]
        try:
            return aead.decrypt(nonce, ciphertext[HEADER_BYTES + NONCE_BYTES :], header + context)
        except InvalidTag:
            raise UndecryptableData("ciphertext failed authentication") from None

    def needs_rotation(self, ciphertext: bytes) -> bool:
        return ciphertext[1:HEADER_BYTES] != self._current

    def rotate(self, ciphertext: bytes, *, context: bytes = b"") -> bytes:
        """The same plaintext sealed with the newest key (unchanged if it already is)."""
        if not self.needs_rotation(ciphertext):
            return ciphertext
        return self.encrypt(self.decrypt(ciphertext, context=context), context=context)

    # Operator contact data: a small JSON object such as {"phone": ..., "email": ...}.

    def encrypt_json(self, value: dict[str, Any], *, context: bytes = b"") -> bytes:
        data = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
        return self.encrypt(data, context=context)

    def decrypt_json(self, ciphertext: bytes, *, context: bytes = b"") -> dict[str, Any]:
        value = json.loads(self.decrypt(ciphertext, context=context))
        if not isinstance(value, dict):
            raise UndecryptableData("expected a JSON object")
        return value
