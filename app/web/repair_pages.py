"""The board's "Review repair": a repair draft for a machine that is down, in the optimizer panel.

    POST /board/repairs?{view}   equipment_id=7  →  the `#optimizer` panel showing the draft

Offered in the conflicts panel beside each machine out of service
(templates/board/repair_offer.html). The draft is worked out when the
scheduler asks, on the plan as it is then (`services/repair.py`, well under
5 s on the large demo), and shown with the optimizer's own draft panel: the
diff, the ghosts on the board, Apply and Discard, with Apply's stale check.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.domain.repair import MachineDown
from app.services import repair
from app.services.errors import InvalidInput
from app.web import optimizer_pages
from app.web.session import PageSession, page_route, services_of


@page_route(action="plan.optimize")
async def review_breakdown(request: Request, session: PageSession) -> Response:
    form = await request.form()
    raw = form.get("equipment_id")
    if not isinstance(raw, str) or not (raw.isascii() and raw.isdigit() and 0 < len(raw) <= 18):
        raise InvalidInput("which machine?", {"equipment_id": str(raw)[:20]})
    proposed = await repair.propose_repair(
        services=services_of(request), actor=session.actor, cause=MachineDown(int(raw))
    )
    view, _ = await optimizer_pages._view(request)
    queries = optimizer_pages._queries(view, 30, "window")
    return await optimizer_pages._draft_panel(request, session, proposed.draft_id, view, queries)


routes = [Route("/board/repairs", review_breakdown, methods=["POST"])]
