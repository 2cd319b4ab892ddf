from __future__ import annotations

import pytest

from app.services.access import ACTIONS, GRANTS, OWN_TASK_GRANTS, allowed, can_see_task, require
from app.services.context import ROLES, Actor
from app.services.errors import Forbidden

OPERATOR = Actor(user_id=1, role="operator", operator_id=10)
UNLINKED_OPERATOR = Actor(user_id=2, role="operator", operator_id=None)
SCHEDULER = Actor(user_id=3, role="scheduler")
MANAGER = Actor(user_id=4, role="manager")
ADMIN = Actor(user_id=5, role="admin")
SERVICE = Actor(user_id=None, role="scheduler", service_key="tk_1")


def test_every_role_has_grants_and_every_grant_is_an_action() -> None:
    assert set(GRANTS) == set(ROLES)
    for grants in [*GRANTS.values(), *OWN_TASK_GRANTS.values()]:
        assert grants <= ACTIONS


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_admins_may_do_everything(action: str) -> None:
    require(ADMIN, action, task_operator_id=None)


def test_operators_act_on_their_own_tasks_only() -> None:
    require(OPERATOR, "task.execute", task_operator_id=10)
    assert can_see_task(OPERATOR, 10)
    assert not can_see_task(OPERATOR, 11)
    assert not can_see_task(OPERATOR, None)
    with pytest.raises(Forbidden, match="own tasks"):
        require(OPERATOR, "task.execute", task_operator_id=11)
    # Fail closed: forgetting the owner is a refusal, not a pass.
    with pytest.raises(Forbidden):
        require(OPERATOR, "task.execute")


def test_operator_without_operator_link_owns_nothing() -> None:
    assert not can_see_task(UNLINKED_OPERATOR, None)
    assert not allowed(UNLINKED_OPERATOR, "task.execute", task_operator_id=None)


@pytest.mark.parametrize(
    "action",
    ["plan.read", "assignment.write", "resources.manage", "users.manage", "audit.read"],
)
def test_operators_see_no_plan_and_manage_nothing(action: str) -> None:
    with pytest.raises(Forbidden) as refused:
        require(OPERATOR, action)
    assert refused.value.status == 403


def test_operators_may_report_a_breakdown() -> None:
    require(OPERATOR, "equipment.report")
    require(OPERATOR, "own_tasks.read")


def test_schedulers_edit_all_assignments_and_execute_any_task() -> None:
    for action in ["plan.read", "assignment.write", "plan.optimize"]:
        require(SCHEDULER, action)
    require(SCHEDULER, "task.execute", task_operator_id=99)
    assert can_see_task(SCHEDULER, 99) and can_see_task(SCHEDULER, None)
    for action in ["resources.manage", "users.manage", "audit.read", "personal_data.read"]:
        assert not allowed(SCHEDULER, action)


def test_managers_manage_jobs_and_resources_but_not_assignments() -> None:
    require(MANAGER, "plan.read")
    require(MANAGER, "resources.manage")
    require(MANAGER, "personal_data.read")
    for action in ["assignment.write", "task.execute", "users.manage", "personal_data.manage"]:
        assert not allowed(MANAGER, action, task_operator_id=1)


def test_service_keys_get_their_role() -> None:
    require(SERVICE, "assignment.write")


def test_unknown_action_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown action"):
        allowed(ADMIN, "plan.reed")
