"""Who may do what (SPEC §5), as data.

An action is either granted to a role outright or granted only on the
actor's *own* tasks (an operator acting on assignments made to them). Checks
fail closed: an own-only action without the task's operator is refused.

    operator   own_tasks.read, task.read* task.execute*, equipment.report
    scheduler  plan.read, task.read, assignment.write, plan.optimize, task.execute,
               equipment.status, ...
    manager    plan.read, task.read, resources.manage, equipment.status, reports.read, ...
    admin      everything
                                                            (* own tasks only)
"""

from __future__ import annotations

from typing import Final

from app.services.context import Actor
from app.services.errors import Forbidden

ACTIONS: Final = frozenset(
    {
        "own_tasks.read",  # the "My tasks" screen
        "task.read",  # one task and its assignment
        "task.execute",  # start / pause / complete
        "equipment.read",  # equipment list and status (everyone on the floor needs it)
        "equipment.report",  # report a breakdown from the shop floor
        "equipment.status",  # set equipment down / in maintenance / back available
        "plan.read",  # the whole plan: board, dashboard, change feed
        "assignment.write",  # assign, move, unschedule, apply a draft
        "plan.optimize",  # run the optimizer
        "resources.manage",  # jobs, tasks, equipment, operators, calendars
        "reports.read",  # KPI and sensitive reports (access is audited)
        "personal_data.read",  # operator contact data
        "personal_data.manage",  # GDPR export and erasure
        "users.manage",  # users, roles, API keys
        "audit.read",
    }
)

_EVERYONE = frozenset({"equipment.read", "equipment.report"})
_PLANNING = frozenset({"plan.read", "task.read", "own_tasks.read", "reports.read"})
# Managers and schedulers take machines out of and back into service.
_STATUS = frozenset({"equipment.status"})

GRANTS: Final[dict[str, frozenset[str]]] = {
    "operator": _EVERYONE | {"own_tasks.read"},
    "scheduler": _EVERYONE
    | _PLANNING
    | _STATUS
    | {"assignment.write", "plan.optimize", "task.execute"},
    "manager": _EVERYONE | _PLANNING | _STATUS | {"resources.manage", "personal_data.read"},
    "admin": ACTIONS,
}

OWN_TASK_GRANTS: Final[dict[str, frozenset[str]]] = {
    "operator": frozenset({"task.read", "task.execute"}),
}


def allowed(actor: Actor, action: str, *, task_operator_id: int | None = None) -> bool:
    """May `actor` do `action`? For task actions pass the assigned operator's id."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    if action in GRANTS.get(actor.role, frozenset()):
        return True
    if action in OWN_TASK_GRANTS.get(actor.role, frozenset()):
        return actor.operator_id is not None and task_operator_id == actor.operator_id
    return False


def require(actor: Actor, action: str, *, task_operator_id: int | None = None) -> None:
    if allowed(actor, action, task_operator_id=task_operator_id):
        return
    if action in OWN_TASK_GRANTS.get(actor.role, frozenset()):
        message = f"{action} is allowed on your own tasks only"
    else:
        message = f"role {actor.role!r} may not {action}"
    raise Forbidden(message, {"action": action, "role": actor.role})


def require_some(actor: Actor, action: str) -> None:
    """Refuse (403) a role that may never do `action`, not even on its own tasks.

    Checked before anything is looked up, so the refusal is the same for every
    id: it says something about the role, nothing about the entity.
    """
    if action in GRANTS.get(actor.role, frozenset()) or action in OWN_TASK_GRANTS.get(
        actor.role, frozenset()
    ):
        return
    raise Forbidden(f"role {actor.role!r} may not {action}", {"action": action, "role": actor.role})


def can_see_task(actor: Actor, operator_id_of_assignment: int | None) -> bool:
    """Whether the task (assigned to that operator, or unassigned) is visible to `actor`."""
    return allowed(actor, "task.read", task_operator_id=operator_id_of_assignment)
