"""Equipment and operators: the plant's resources, managed by managers.

Every equipment status change is audited (SPEC §2). Operator contact data is
personal: it is stored encrypted, never written to the audit trail, and shown
only to roles the permission map grants `personal_data.read`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from app.db import tables as t
from app.db.text_search import contains
from app.security.crypto import DataCipher
from app.services.access import allowed, require
from app.services.context import Actor, Services
from app.services.dependents import refuse_planned
from app.services.errors import NotFound, StateConflict
from app.services.jsonable import jsonable
from app.services.views import (
    EquipmentView,
    OperatorView,
    downtime_views,
    equipment_view,
    operator_view,
)
from app.services.write_path import change, require_version

MAX_PAGE = 100


# --- equipment -------------------------------------------------------------------------------


def _equipment_query() -> Any:
    return select(t.Equipment).options(selectinload(t.Equipment.downtime))


async def list_equipment(
    *,
    services: Services,
    actor: Actor,
    type: str | None,
    status: str | None,
    capability: str | None,
    limit: int,
    offset: int,
    search: str | None = None,
) -> tuple[list[EquipmentView], int]:
    require(actor, "equipment.read")
    query = _equipment_query()
    if search:
        query = query.where(contains(t.Equipment.name, search))
    if type:
        query = query.where(t.Equipment.type == type)
    if status:
        query = query.where(t.Equipment.status == status)
    async with services.db.read() as session:
        rows = list((await session.execute(query.order_by(t.Equipment.name))).scalars())
    if capability:
        rows = [row for row in rows if capability in (row.capabilities or [])]
    page = rows[offset : offset + min(limit, MAX_PAGE)]
    return [equipment_view(row) for row in page], len(rows)


async def get_equipment(*, services: Services, actor: Actor, equipment_id: int) -> EquipmentView:
    require(actor, "equipment.read")
    async with services.db.read() as session:
        row = (
            await session.execute(_equipment_query().where(t.Equipment.id == equipment_id))
        ).scalar_one_or_none()
    if row is None:
        raise NotFound("equipment", equipment_id)
    return equipment_view(row)


async def create_equipment(
    *, services: Services, actor: Actor, data: dict[str, Any]
) -> EquipmentView:
    require(actor, "resources.manage")
    downtime = data.pop("downtime", [])
    async with change(services, actor, "equipment.created") as tx:
        if await tx.session.scalar(select(t.Equipment.id).where(t.Equipment.name == data["name"])):
            raise StateConflict(f"equipment named {data['name']!r} exists already")
        row = t.Equipment(**data, downtime=[t.EquipmentDowntime(**w) for w in downtime])
        tx.session.add(row)
        await tx.session.flush()
        tx.audit("equipment", row.id, before=None, after=jsonable({**data, "downtime": downtime}))
        await tx.session.flush()
        view = equipment_view(row)  # before commit: no re-read can fail a committed write
    return view


async def update_equipment(
    *,
    services: Services,
    actor: Actor,
    equipment_id: int,
    expected_version: int | None,
    changes: dict[str, Any],
) -> EquipmentView:
    require(actor, "resources.manage")
    require_version(expected_version)
    kind = "equipment.status_changed" if "status" in changes else "equipment.updated"
    async with change(services, actor, kind) as tx:
        await tx.claim(t.Equipment, equipment_id, expected_version)
        row = (
            await tx.session.execute(_equipment_query().where(t.Equipment.id == equipment_id))
        ).scalar_one()
        before = jsonable({key: _field(row, key) for key in changes})
        name = changes.get("name")
        if name is not None and await tx.session.scalar(
            select(t.Equipment.id).where(t.Equipment.name == name, t.Equipment.id != equipment_id)
        ):
            # As on create: a name taken is a conflict, not the database's unique-index error.
            raise StateConflict(f"equipment named {name!r} exists already")
        if changes.get("status") == "available":
            changes.setdefault("expected_back", None)
        for key, value in changes.items():
            if key == "downtime":
                row.downtime = [t.EquipmentDowntime(**w) for w in value]
            else:
                setattr(row, key, value)
        tx.audit("equipment", equipment_id, before=before, after=jsonable(changes))
        await tx.session.flush()
        view = equipment_view(row)
    return view


def _field(row: t.Equipment, key: str) -> Any:
    if key == "downtime":
        return downtime_views(row)
    return getattr(row, key)


async def delete_equipment(
    *, services: Services, actor: Actor, equipment_id: int, expected_version: int | None
) -> None:
    require(actor, "resources.manage")
    require_version(expected_version)
    async with change(services, actor, "equipment.deleted") as tx:
        row = await tx.claim(t.Equipment, equipment_id, expected_version)
        await refuse_planned(tx.session, t.Assignment.equipment_id, equipment_id, f"on {row.name}")
        await tx.session.delete(row)
        tx.audit("equipment", equipment_id, before={"name": row.name}, after=None)


# --- operators -------------------------------------------------------------------------------


def operator_query() -> Any:
    """Operators with their skills, shifts and time off loaded (a view or an export of one)."""
    return select(t.Operator).options(
        selectinload(t.Operator.skills),
        selectinload(t.Operator.shifts),
        selectinload(t.Operator.exceptions),
    )


def _can_read_operator(actor: Actor, operator_id: int) -> bool:
    return actor.role != "operator" or actor.operator_id == operator_id


async def list_operators(
    *,
    services: Services,
    actor: Actor,
    skill: str | None,
    limit: int,
    offset: int,
    search: str | None = None,
) -> tuple[list[OperatorView], int]:
    query = operator_query()
    if search:
        query = query.where(contains(t.Operator.name, search))
    if actor.role == "operator":
        query = query.where(t.Operator.id == (actor.operator_id or -1))
    else:
        require(actor, "plan.read")
    if skill:
        query = query.where(
            t.Operator.id.in_(
                select(t.OperatorSkill.operator_id).where(t.OperatorSkill.skill == skill)
            )
        )
    async with services.db.read() as session:
        total = await session.scalar(select(func.count()).select_from(query.subquery()))
        rows = (
            await session.execute(
                query.order_by(t.Operator.name, t.Operator.id)
                .limit(min(limit, MAX_PAGE))
                .offset(offset)
            )
        ).scalars()
        return [_operator_view(services, actor, row) for row in rows], int(total or 0)


async def get_operator(*, services: Services, actor: Actor, operator_id: int) -> OperatorView:
    if not _can_read_operator(actor, operator_id):
        raise NotFound("operators", operator_id)
    if actor.role != "operator":
        require(actor, "plan.read")
    async with services.db.read() as session:
        row = (
            await session.execute(operator_query().where(t.Operator.id == operator_id))
        ).scalar_one_or_none()
    if row is None:
        raise NotFound("operators", operator_id)
    return _operator_view(services, actor, row)


def _operator_view(services: Services, actor: Actor, row: t.Operator) -> OperatorView:
    """The operator as `actor` may see them: contact data only with personal_data.read
    (the permission map decides; everyone else gets `contact: null`)."""
    contact = None
    if row.contact_encrypted is not None and allowed(actor, "personal_data.read"):
        contact = DataCipher(services.settings.data_keys).decrypt_json(row.contact_encrypted)
    return operator_view(row, contact)


def _operator_children(data: dict[str, Any]) -> dict[str, Any]:
    children: dict[str, Any] = {}
    if "skills" in data:
        children["skills"] = [t.OperatorSkill(**s) for s in data.pop("skills")]
    if "shifts" in data:
        children["shifts"] = [t.WeeklyShift(**s) for s in data.pop("shifts")]
    if "exceptions" in data:
        children["exceptions"] = [t.CalendarException(**e) for e in data.pop("exceptions")]
    return children


def _audit_safe(data: dict[str, Any]) -> dict[str, Any]:
    """Operator changes as audited: no name, contact or reason for time off (personal data,
    which the hash-chained trail could never erase)."""
    safe: dict[str, Any] = jsonable({k: v for k, v in data.items() if k not in ("name", "contact")})
    if isinstance(safe.get("exceptions"), list):
        safe["exceptions"] = [
            {k: v for k, v in e.items() if k != "reason"} if isinstance(e, dict) else e
            for e in safe["exceptions"]
        ]
    return safe


async def create_operator(
    *, services: Services, actor: Actor, data: dict[str, Any]
) -> OperatorView:
    require(actor, "resources.manage")
    contact = data.pop("contact", None)
    audited = _audit_safe(data)
    async with change(services, actor, "operator.created") as tx:
        row = t.Operator(**_operator_children(data), **data)
        if contact is not None:
            row.contact_encrypted = DataCipher(services.settings.data_keys).encrypt_json(contact)
        tx.session.add(row)
        await tx.session.flush()
        tx.audit("operators", row.id, before=None, after=audited)
        view = _operator_view(services, actor, row)
    return view


async def update_operator(
    *,
    services: Services,
    actor: Actor,
    operator_id: int,
    expected_version: int | None,
    changes: dict[str, Any],
) -> OperatorView:
    require(actor, "resources.manage")
    require_version(expected_version)
    audited = _audit_safe(changes)
    contact_given = "contact" in changes
    contact = changes.pop("contact", None)
    async with change(services, actor, "operator.updated") as tx:
        await tx.claim(t.Operator, operator_id, expected_version)
        row = (
            await tx.session.execute(operator_query().where(t.Operator.id == operator_id))
        ).scalar_one()
        for key, value in {**_operator_children(changes), **changes}.items():
            setattr(row, key, value)
        if contact_given:
            row.contact_encrypted = (
                None
                if contact is None
                else DataCipher(services.settings.data_keys).encrypt_json(contact)
            )
        tx.audit("operators", operator_id, before=None, after=audited)
        await tx.session.flush()
        view = _operator_view(services, actor, row)
    return view


async def delete_operator(
    *, services: Services, actor: Actor, operator_id: int, expected_version: int | None
) -> None:
    require(actor, "resources.manage")
    require_version(expected_version)
    async with change(services, actor, "operator.deleted") as tx:
        row = await tx.claim(t.Operator, operator_id, expected_version)
        await refuse_planned(tx.session, t.Assignment.operator_id, operator_id, "for this operator")
        await tx.session.delete(row)
        tx.audit("operators", operator_id, before={}, after=None)
