"""A task's slot is written in one place (`services/placing.py`): a check of the source.

Moves, unscheduling, the bulk moves and applying drafts all go through
`tx.place()`, `tx.unplace()` or `tx.place_all()`; their behaviour is tested
with each of them. This test fails when slot rows are written anywhere else.
"""

from __future__ import annotations

import re
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"
# Writing slot rows: an ORM row made, deleted or inserted, a Core insert or delete,
# or a field of a slot set.
SLOT_WRITE = re.compile(
    r"(?:\b(?:t|tables)\.Assignment\(|delete\((?:t|tables)\.Assignment\b"
    r"|insert\((?:t|tables)\.Assignment\b|insert\(ASSIGNMENTS\)|_table\(\"assignments\"\)"
    r"|\bslot\.(?:start|end|operator_id|equipment_id|assigned_by|assigned_at)\s*=[^=])"
)
# Besides placing.py, only loading a whole plant and storing a draft beside the
# live plan insert slot rows: nobody's move to audit there.
ALLOWED = {"services/placing.py", "services/plant_loading.py", "services/draft_store.py"}


def slot_writes(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if SLOT_WRITE.search(line):
                found.append(f"{path.relative_to(root).as_posix()}:{number}")
    return found


def test_slots_are_written_only_by_placing() -> None:
    outside = [w for w in slot_writes(APP) if w.rsplit(":", 1)[0] not in ALLOWED]
    assert outside == []
    assert any(w.startswith("services/placing.py:") for w in slot_writes(APP))


def test_the_check_sees_a_slot_written_elsewhere(tmp_path: Path) -> None:
    (tmp_path / "rogue.py").write_text(
        "slot.start = slot.start + delta\n"
        "session.add(t.Assignment(task_id=1))\n"
        "await session.execute(delete(t.Assignment).where(x))\n"
        "if slot.start == other:\n"
    )
    assert slot_writes(tmp_path) == ["rogue.py:1", "rogue.py:2", "rogue.py:3"]
