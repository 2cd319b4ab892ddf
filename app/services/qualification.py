"""Who may do a task: the qualified operators and capable equipment, by the domain's one check."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from app.db import tables as t
from app.domain.validation import capable, qualified
from app.services.access import require
from app.services.context import Actor, Services
from app.services.errors import NotFound


@dataclass(frozen=True, slots=True)
class Qualified:
    operator_ids: frozenset[int]
    equipment_ids: frozenset[int]


async def qualified_for(*, services: Services, actor: Actor, task_id: int) -> Qualified:
    """The operators with the task's skill at its level, the equipment with its capability."""
    require(actor, "plan.read")
    sk, eq = t.OperatorSkill.__table__.c, t.Equipment.__table__.c
    async with services.db.read() as session, session.begin():
        task = await session.get(t.Task, task_id)
        if task is None:
            raise NotFound("tasks", task_id)
        skills: dict[int, dict[str, int]] = {}
        operator_ids = [row.id for row in await session.execute(select(t.Operator.__table__.c.id))]
        if task.required_skill is not None:
            found = await session.execute(
                select(sk.operator_id, sk.level).where(sk.skill == task.required_skill)
            )
            skills = {row.operator_id: {task.required_skill: row.level} for row in found}
        machines = await session.execute(select(eq.id, eq.capabilities))
        return Qualified(
            operator_ids=frozenset(
                operator_id
                for operator_id in operator_ids
                if qualified(
                    skills.get(operator_id, {}),
                    skill=task.required_skill,
                    min_level=task.min_level,
                )
            ),
            equipment_ids=frozenset(
                row.id
                for row in machines
                if capable(row.capabilities or (), capability=task.required_capability)
            ),
        )
