"""The pieces of a page the live layer sends (realtime/fragments.py): rendered here,
where the page's markup is known, and handed to `Live` by main.py."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

from markupsafe import Markup

from app.realtime.presence import Viewer

# Avatars shown before "+N more" (a board on a wall can have many viewers).
MAX_SHOWN = 8
# How the board renderer opens `#board-revision` (templates/board/changes.html).
REVISION_TAG = '<meta id="board-revision"'


class PageFragments:
    def presence(self, viewers: Sequence[Viewer], *, me: int | None) -> str:
        return render_presence(viewers, me=me)

    def reload_notice(self, message: str) -> str:
        return str(
            Markup(
                '<div id="notice" class="notice notice-info" role="status" hx-swap-oob="true" '
                'data-reload="1"><p>{} Reloading…</p></div>'
            ).format(message)
        )

    def stamped(self, html: str, committed_at: float) -> str:
        return stamped(html, committed_at)


FRAGMENTS = PageFragments()


@functools.lru_cache(maxsize=64)
def stamped(html: str, committed_at: float) -> str:
    """`html` with `data-committed-at` (epoch ms) on its `#board-revision`.

    Cached: boards of one view share one `html` object (shared_render.py), and a
    str caches its hash, so every board after the first gets the same stamped
    string back for a dictionary lookup instead of a copy of its own.
    """
    return html.replace(REVISION_TAG, f'{REVISION_TAG} data-committed-at="{committed_at:.1f}"', 1)


def render_presence(viewers: Iterable[Viewer], *, me: int | None) -> str:
    """`#presence`: the others on the board, and (hidden, for live.js) what they drag.

    Drag markers are not fragments of the bars: the bars belong to the board's
    renderer and are re-rendered by every change. live.js copies this list onto
    `#bar-{id}[data-dragged-by]` after each swap instead.
    """
    others: dict[int, str] = {}
    drags: dict[int, list[str]] = {}
    for viewer in viewers:
        if viewer.user_id == me:
            continue
        others.setdefault(viewer.user_id, viewer.name)
        if viewer.dragging is not None:
            drags.setdefault(viewer.dragging, []).append(viewer.name)
    names = sorted(others.values(), key=str.casefold)
    items = Markup("").join(
        Markup(
            '<li class="presence-viewer" title="{0}"><span class="avatar" aria-hidden="true">'
            '{1}</span><span class="presence-name">{0}</span></li>'
        ).format(name, initials(name))
        for name in names[:MAX_SHOWN]
    )
    if len(names) > MAX_SHOWN:
        items += Markup('<li class="presence-more">+{}</li>').format(len(names) - MAX_SHOWN)
    if not names:
        items = Markup('<li class="presence-alone">Only you are on this board</li>')
    markers = Markup("").join(
        Markup('<li data-task-id="{}" data-user="{}"></li>').format(task_id, ", ".join(who))
        for task_id, who in sorted(drags.items())
    )
    return str(
        Markup(
            '<div id="presence" class="presence" aria-label="Who else is on the board" '
            'hx-swap-oob="true"><ul class="presence-viewers">{}</ul>'
            '<ul class="presence-drags" hidden>{}</ul></div>'
        ).format(items, markers)
    )


def initials(name: str) -> str:
    parts = [p for p in name.replace("-", " ").split() if p]
    return "".join(p[0] for p in parts[:2]).upper() or "?"
