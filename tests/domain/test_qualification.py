"""The one qualification check: skill at the task's level, capability on the machine."""

from __future__ import annotations

from app.domain.validation import capable, qualified


def test_an_operator_qualifies_with_the_skill_at_the_level_or_above() -> None:
    assert qualified({"welding": 3}, skill="welding", min_level=3)
    assert qualified({"welding": 4}, skill="welding", min_level=3)


def test_a_lower_level_or_a_missing_skill_does_not_qualify() -> None:
    assert not qualified({"welding": 1}, skill="welding", min_level=3)
    assert not qualified({"milling": 5}, skill="welding", min_level=1)
    assert not qualified({}, skill="welding", min_level=1)


def test_a_task_without_a_skill_takes_anyone() -> None:
    assert qualified({}, skill=None, min_level=3)


def test_equipment_is_capable_with_the_capability_or_when_none_is_needed() -> None:
    assert capable(("milling", "drilling"), capability="milling")
    assert not capable(("welding",), capability="milling")
    assert capable((), capability=None)
