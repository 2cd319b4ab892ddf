"""Data-key rotation: every encrypted value re-sealed with the newest data key.

After a new key is put on the first line of `TAKT_DATA_KEYS_FILE`, new writes
use it and old values still decrypt with the older keys. Rotating re-seals the
old values (operator contact data, API key secrets) so that the older keys can
then be removed from the file. Values already sealed with the newest key are
left as they are, so a second rotation changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import tables
from app.security.crypto import DataCipher, UndecryptableData
from app.services.access import require
from app.services.context import Actor, Services
from app.services.errors import InvalidInput
from app.services.write_path import change


@dataclass(frozen=True, slots=True)
class Rotation:
    # How many values were re-sealed, by what they are.
    operator_contacts: int
    api_key_secrets: int

    @property
    def total(self) -> int:
        return self.operator_contacts + self.api_key_secrets


@dataclass(frozen=True, slots=True)
class _Sealed:
    """One encrypted value not sealed with the newest key."""

    table: type[tables.Operator] | type[tables.ApiKey]
    row_id: int
    sealed: bytes
    # Authenticated with the value: an API key's secret is bound to its key id.
    context: bytes
    what: str


async def rotate_data_keys(*, services: Services, actor: Actor) -> Rotation:
    """Re-seal with the newest key, in one audited change; no change if none needs it.

    A value that no key of the file opens refuses the whole rotation
    (`InvalidInput` naming its row), so nothing is half rotated.
    """
    require(actor, "personal_data.manage")
    cipher = DataCipher(services.settings.data_keys)
    async with services.db.read() as session:
        if not await _stale(session, cipher):
            return Rotation(0, 0)
    async with change(services, actor, "data_keys.rotated") as tx:
        stale = await _stale(tx.session, cipher)
        for value in stale:
            await tx.session.execute(
                update(value.table)
                .where(value.table.id == value.row_id)
                .values({_COLUMN[value.table]: _rotated(cipher, value)})
            )
        contacts = sum(value.table is tables.Operator for value in stale)
        rotation = Rotation(operator_contacts=contacts, api_key_secrets=len(stale) - contacts)
        tx.audit(
            "data_keys",
            None,
            before=None,
            after={
                "operator_contacts": rotation.operator_contacts,
                "api_key_secrets": rotation.api_key_secrets,
            },
        )
    return rotation


_COLUMN = {tables.Operator: "contact_encrypted", tables.ApiKey: "secret_encrypted"}


async def _stale(session: AsyncSession, cipher: DataCipher) -> list[_Sealed]:
    contacts = await session.execute(
        select(tables.Operator.id, tables.Operator.contact_encrypted).where(
            tables.Operator.contact_encrypted.is_not(None)
        )
    )
    secrets = await session.execute(
        select(tables.ApiKey.id, tables.ApiKey.key_id, tables.ApiKey.secret_encrypted)
    )
    found = [
        _Sealed(tables.Operator, row_id, sealed, b"", f"operator {row_id}")
        for row_id, sealed in contacts
        if sealed is not None
    ]
    found += [
        _Sealed(tables.ApiKey, row_id, sealed, key_id.encode(), f"API key {key_id}")
        for row_id, key_id, sealed in secrets
    ]
    return [value for value in found if cipher.needs_rotation(value.sealed)]


def _rotated(cipher: DataCipher, value: _Sealed) -> bytes:
    try:
        return cipher.rotate(value.sealed, context=value.context)
    except UndecryptableData as error:
        raise InvalidInput(
            f"the encrypted data of {value.what} opens with no key of the data keys file "
            f"({error}); put back the key it was sealed with",
            {"field": "data_keys"},
        ) from None
