"""The event's report for staff (the /report page draws it): GET /api/report."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from ..services import report as report_service
from .common import hub_of, staff
from .moderation import MODERATORS


async def report(request: Request) -> JSONResponse:
    """
    summary: The loaded event's report (counts, timeline, funnel, times, votes, workload)
    responses:
      200: the report (services/report.py)
    """
    await staff(request, *MODERATORS)
    hub = hub_of(request)
    body = await hub.run(report_service.build, hub.ctx, await hub.event_id())
    # Askers' texts and the moderators' names: kept out of shared caches.
    return JSONResponse(body, headers={"Cache-Control": "no-store"})
