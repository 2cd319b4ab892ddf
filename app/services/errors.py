"""Errors the service layer raises; the API and pages map them to responses.

    ServiceError
    ├── Unauthorized          401  no credentials, or bad/expired ones
    ├── NotFound              404  the entity does not exist (or is not yours to see)
    ├── Forbidden             403  your role may not do this
    ├── InvalidInput          422  the request is well-formed but makes no sense
    ├── StateConflict         409  the entity is not in a state that allows this
    │   ├── DraftStale        409  tasks a draft touches changed since its run started
    │   └── DraftExpired      409  the draft is older than drafts are kept
    ├── VersionMismatch       412  you edited an old version (optimistic locking)
    ├── PreconditionRequired  428  the edit needs `If-Match`
    └── RateLimited           429  too many requests; retry after `Retry-After` seconds

`headers` holds response headers the error needs (`WWW-Authenticate`,
`Retry-After`, `RateLimit-*`); the API adds them to the error response.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any


class ServiceError(Exception):
    code = "error"
    status = 400

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers: dict[str, str] = {}


class Unauthorized(ServiceError):
    code = "unauthorized"
    status = 401

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message, details)
        self.headers = {"WWW-Authenticate": 'Bearer realm="takt"'}


class NotFound(ServiceError):
    code = "not_found"
    status = 404

    def __init__(self, entity: str, entity_id: object) -> None:
        super().__init__(f"{entity} {entity_id} not found", {"entity": entity, "id": entity_id})


class Forbidden(ServiceError):
    code = "forbidden"
    status = 403


class InvalidInput(ServiceError):
    code = "invalid_input"
    status = 422


class StateConflict(ServiceError):
    code = "state_conflict"
    status = 409


class DraftStale(StateConflict):
    code = "draft_stale"

    def __init__(
        self, *, draft_id: int, changed_task_ids: list[int], changed_by: dict[str, int | None]
    ) -> None:
        super().__init__(
            f"{len(changed_task_ids)} task(s) of draft {draft_id} changed since its run started; "
            "run the optimizer again",
            {"draft_id": draft_id, "changed_task_ids": changed_task_ids, "changed_by": changed_by},
        )
        self.changed_task_ids = changed_task_ids


class DraftExpired(StateConflict):
    code = "draft_expired"

    def __init__(self, *, draft_id: int, expired_at: datetime) -> None:
        super().__init__(
            f"draft {draft_id} expired at {expired_at.isoformat(timespec='seconds')}; "
            "run the optimizer again",
            {"draft_id": draft_id, "expired_at": expired_at.isoformat()},
        )


class VersionMismatch(ServiceError):
    code = "version_mismatch"
    status = 412

    def __init__(
        self, *, entity: str, entity_id: int, current_version: int, changed_by: int | None
    ) -> None:
        super().__init__(
            f"{entity} {entity_id} was changed by someone else (now version {current_version})",
            {
                "entity": entity,
                "id": entity_id,
                "current_version": current_version,
                "changed_by": changed_by,
            },
        )
        self.current_version = current_version
        self.changed_by = changed_by


class PreconditionRequired(ServiceError):
    code = "precondition_required"
    status = 428


class RateLimited(ServiceError):
    code = "rate_limited"
    status = 429

    def __init__(self, *, limit: int, retry_after: int, headers: Mapping[str, str]) -> None:
        super().__init__(
            f"rate limit of {limit} requests exceeded; retry in {retry_after} s",
            {"limit": limit, "retry_after": retry_after},
        )
        self.retry_after = retry_after
        self.headers = dict(headers)
