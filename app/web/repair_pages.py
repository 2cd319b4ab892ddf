"""The board's "Review repair": a repair draft for a disruption, in the optimizer panel.

    POST /board/repairs?{view}   equipment_id=7               a machine out of service
                                 operator_id=3&task_id=41     an operator away (time off)
                                 late_task_id=41[&minutes=30] a task running late
      →  the `#optimizer` panel showing the draft

Offered where a scheduler meets the disruption (templates/board/repair_offer.html):
in the conflicts panel beside each machine out of service, on each "outside shift"
row (the operator's time off over the task's slot: `repair.absence_behind`), and
beside each task running late (in progress past its booked end), there and in its
task detail, where the minutes it still needs can be said (30 by default). The
draft is worked out when the scheduler asks, on the plan as it is then
(`services/repair.py`, well under 5 s on the large demo), and shown with the
optimizer's own draft panel: the diff, the ghosts on the board, Apply and
Discard, with Apply's stale check.
"""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.domain.repair import Disruption, MachineDown
from app.services import repair
from app.services.context import Services
from app.services.errors import InvalidInput
from app.web import optimizer_pages
from app.web.session import PageSession, page_route, services_of

# What a task running late still needs when nobody said (the task detail asks).
LATE_MINUTES = 30


@page_route(action="plan.optimize")
async def review_repair(request: Request, session: PageSession) -> Response:
    cause = await _cause(services_of(request), await request.form())
    proposed = await repair.propose_repair(
        services=services_of(request), actor=session.actor, cause=cause
    )
    view, _ = await optimizer_pages._view(request)
    queries = optimizer_pages._queries(view, 30, "window")
    return await optimizer_pages._draft_panel(request, session, proposed.draft_id, view, queries)


async def _cause(services: Services, form: FormData) -> Disruption:
    if "equipment_id" in form:
        return MachineDown(_number(form, "equipment_id"))
    if "operator_id" in form:
        return await repair.absence_behind(
            services=services,
            operator_id=_number(form, "operator_id"),
            task_id=_number(form, "task_id"),
        )
    if "late_task_id" in form:
        minutes = _number(form, "minutes") if form.get("minutes") else LATE_MINUTES
        return await repair.late_by(
            services=services, task_id=_number(form, "late_task_id"), minutes=minutes
        )
    raise InvalidInput("repair what? a machine, an operator's absence or a late task", {})


def _number(form: FormData, name: str) -> int:
    raw = form.get(name)
    if not isinstance(raw, str) or not (raw.isascii() and raw.isdigit() and 0 < len(raw) <= 18):
        raise InvalidInput(f"{name} must be a whole number", {name: str(raw)[:20]})
    return int(raw)


routes = [Route("/board/repairs", review_repair, methods=["POST"])]
