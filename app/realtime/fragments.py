"""The HTML the live layer sends but does not write: the pages hand it in.

    live = Live(services, render, refresh, page_session, fragments=web.live_fragments.FRAGMENTS)

`realtime` moves fragments and never renders one (no HTML here): the board's
changes come from the board's renderer, and these three small pieces of a
page come from `app/web/live_fragments.py`, which knows the page's markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from app.realtime.presence import Viewer


class Fragments(Protocol):
    def presence(self, viewers: Sequence[Viewer], *, me: int | None) -> str:
        """`#presence` (out of band): the others on the board, and what they drag."""
        ...

    def reload_notice(self, message: str) -> str:
        """The `#notice` (out of band) that tells live.js to reload the page."""
        ...

    def stamped(self, html: str, committed_at: float) -> str:
        """`html` with the change's commit time (epoch ms) on its revision marker."""
        ...
