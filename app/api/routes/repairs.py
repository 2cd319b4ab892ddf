"""Repair drafts: one call after a disruption, answered with the draft.

    POST /repairs   {"cause": "breakdown", "equipment_id": 7, "until": "...|null"}
                    {"cause": "absence", "operator_id": 3, "start": "...", "end": "..."}
                    {"cause": "late", "task_id": 42, "expected_end": "..."}
                    → 201 {draft_id, changes, hit, left, to_tray, ..., draft: the diff}

The draft is reviewed (`GET /drafts/{id}`), applied (`POST /drafts/{id}/apply`)
or discarded (`DELETE /drafts/{id}`) like an optimizer's. Nothing live is
written by the call itself.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from app.api.deps import actor_of, json_response, services_of
from app.api.endpoint import ApiRouter, read_body
from app.api.schemas import UTC, Id, Strict
from app.domain.repair import Disruption, MachineDown, OperatorAbsent, TaskLate
from app.services import drafts, repair
from app.services.errors import InvalidInput

api = ApiRouter()

# Which fields each cause needs (the others must be left out).
NEEDS = {
    "breakdown": ("equipment_id",),
    "absence": ("operator_id", "start", "end"),
    "late": ("task_id", "expected_end"),
}
MAY = {"breakdown": ("until",), "absence": (), "late": ()}


class RepairIn(Strict):
    cause: Literal["breakdown", "absence", "late"]
    equipment_id: Id | None = None
    # Breakdown: when the machine is expected back (default: its own expected back, else unknown).
    until: UTC | None = None
    operator_id: Id | None = None
    start: UTC | None = None
    end: UTC | None = None
    task_id: Id | None = None
    expected_end: UTC | None = None


class RepairOut(BaseModel):
    draft_id: int
    draft_url: str
    cause: dict[str, Any]
    changes: int
    hit: list[int]
    left: list[int]
    to_tray: list[int]
    seconds: float
    draft: dict[str, Any]


@api.post(
    "/repairs",
    summary="A minimal-change repair draft after a breakdown, an absence or a late task",
    tag="optimizer",
    body=RepairIn,
    response=RepairOut,
    status=201,
    errors=(404,),
)
async def propose_repair(request: Request) -> Response:
    body = await read_body(request, RepairIn)
    services, actor = services_of(request), await actor_of(request)
    proposed = await repair.propose_repair(services=services, actor=actor, cause=disruption(body))
    diff = await drafts.draft_diff(services=services, actor=actor, draft_id=proposed.draft_id)
    return json_response(
        {
            "draft_id": proposed.draft_id,
            "draft_url": f"/api/v1/drafts/{proposed.draft_id}",
            "cause": proposed.cause,
            "changes": proposed.changes,
            "hit": proposed.hit,
            "left": proposed.left,
            "to_tray": proposed.to_tray,
            "seconds": proposed.seconds,
            "draft": diff,
        },
        status=201,
    )


def disruption(body: RepairIn) -> Disruption:
    """The cause as the domain says it; a missing or foreign field is refused (422)."""
    given = {name for name in body.model_fields_set if name != "cause"}
    missing = [name for name in NEEDS[body.cause] if getattr(body, name) is None]
    foreign = sorted(given - set(NEEDS[body.cause]) - set(MAY[body.cause]))
    if missing or foreign:
        raise InvalidInput(
            f"a {body.cause} repair needs {', '.join(NEEDS[body.cause])}",
            {"missing": missing, "not_for_this_cause": foreign},
        )
    if body.cause == "breakdown":
        assert body.equipment_id is not None
        return MachineDown(body.equipment_id, until=body.until)
    if body.cause == "absence":
        assert body.operator_id is not None and body.start is not None and body.end is not None
        return OperatorAbsent(body.operator_id, body.start, body.end)
    assert body.task_id is not None and body.expected_end is not None
    return TaskLate(body.task_id, body.expected_end)
