"""Server-rendered SVG charts for the dashboard wall.

Plain string building, no JavaScript: the wall runs unattended for days, so
each chart has a fixed viewBox and a bounded number of elements whatever the
data (top N bars and one "the rest" row), and swapping a fresh chart in never
grows the page. Every label passes through `escape`. Text uses `currentColor`
so the page's theme decides light or dark; bars use the Okabe-Ito palette,
which stays distinguishable with the common colour-vision deficiencies, and
nothing is told by colour alone (an overbooked bar also carries a "!").

Sizes are in viewBox units and meant for a 1920x1080 wall showing two charts
across: a 960-wide chart drawn about 900 px wide keeps 26-unit text at about
24 px, readable from across the room.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from math import pi

from markupsafe import Markup, escape

from app.domain.conflicts import ConflictType, Severity
from app.domain.kpis import ConflictCount, HourCount, OnTimeRate, PlannedVsDone, Utilization

__all__ = [
    "Bar",
    "conflicts_chart",
    "horizontal_bar_chart",
    "on_time_gauge",
    "planned_vs_done_chart",
    "throughput_chart",
    "utilization_chart",
    "vertical_bar_chart",
]

# Okabe-Ito colours.
BLUE = "#0072B2"
SKY = "#56B4E9"
GREEN = "#009E73"
ORANGE = "#E69F00"
VERMILLION = "#D55E00"

WIDTH = 960
_FONT = "system-ui, sans-serif"
_TITLE_SIZE = 34
_TEXT_SIZE = 26
_LABEL_CHARS = 18
_ROW = 56
_TOP = 72  # room for the visible title


# Short enough for the label column at wall size; the <desc> keeps the full type names.
CONFLICT_LABELS: dict[ConflictType, str] = {
    ConflictType.SKILL_MISMATCH: "skill mismatch",
    ConflictType.CAPABILITY_MISMATCH: "wrong machine",
    ConflictType.DURATION_MISMATCH: "wrong duration",
    ConflictType.OPERATOR_DOUBLE_BOOKED: "operator overlap",
    ConflictType.EQUIPMENT_DOUBLE_BOOKED: "machine overlap",
    ConflictType.EQUIPMENT_UNAVAILABLE: "machine down",
    ConflictType.OUTSIDE_SHIFT: "outside shift",
    ConflictType.DEPENDENCY_VIOLATION: "order of steps",
    ConflictType.BEFORE_RELEASE: "before release",
    ConflictType.LATE: "late",
}


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    # Length as a share of the full track, 0..1 (clamped when drawn).
    share: float
    # What is written next to the bar: "87 %", "12".
    text: str
    alert: bool = False
    colour: str = BLUE


def horizontal_bar_chart(
    chart_id: str, title: str, bars: Sequence[Bar], *, slots: int, summary: str
) -> Markup:
    """One row per bar, at most `slots` rows; the viewBox height depends on `slots` only."""
    label_x, track_x, track_width = 24, 320, 440
    height = _TOP + slots * _ROW + 16
    rows: list[str] = []
    for index, bar in enumerate(bars[:slots]):
        y = _TOP + index * _ROW
        width = track_width * _clamp(bar.share)
        colour = VERMILLION if bar.alert else bar.colour
        text = f"{bar.text} !" if bar.alert else bar.text
        rows.append(
            f'<g class="row">'
            f'<text x="{label_x}" y="{y + 36}" font-size="{_TEXT_SIZE}">'
            f"{escape(_shorten(bar.label))}</text>"
            f'<rect class="track" x="{track_x}" y="{y + 8}" width="{track_width}" height="40" '
            f'fill="currentColor" fill-opacity="0.12"/>'
            f'<rect class="bar" x="{track_x}" y="{y + 8}" width="{width:.1f}" height="40" '
            f'fill="{colour}"/>'
            f'<text x="{track_x + track_width + 16}" y="{y + 38}" font-size="{_TEXT_SIZE + 2}" '
            f'font-weight="bold">{escape(text)}</text></g>'
        )
    return _svg(chart_id, title, summary, height, "".join(rows))


def vertical_bar_chart(
    chart_id: str, title: str, bars: Sequence[Bar], *, slots: int, summary: str
) -> Markup:
    """Columns side by side, at most `slots`; the value is written above each column."""
    height, base, plot_height, left = 540, 470, 340, 24
    pitch = (WIDTH - 2 * left) / max(slots, 1)
    columns: list[str] = []
    for index, bar in enumerate(bars[:slots]):
        x = left + index * pitch + pitch * 0.15
        column_height = plot_height * _clamp(bar.share)
        middle = x + pitch * 0.35
        columns.append(
            f'<g class="column">'
            f'<rect class="bar" x="{x:.1f}" y="{base - column_height:.1f}" '
            f'width="{pitch * 0.7:.1f}" height="{column_height:.1f}" fill="{bar.colour}"/>'
            f'<text x="{middle:.1f}" y="{base - column_height - 10:.1f}" text-anchor="middle" '
            f'font-size="{_TEXT_SIZE + 2}" font-weight="bold">{escape(bar.text)}</text>'
            f'<text x="{middle:.1f}" y="{base + 36}" text-anchor="middle" '
            f'font-size="{_TEXT_SIZE - 2}">{escape(bar.label)}</text></g>'
        )
    axis = (
        f'<line x1="{left}" y1="{base}" x2="{WIDTH - left}" y2="{base}" '
        f'stroke="currentColor" stroke-opacity="0.4" stroke-width="2"/>'
    )
    return _svg(chart_id, title, summary, height, axis + "".join(columns))


def utilization_chart(
    chart_id: str, title: str, rows: Sequence[Utilization], *, top: int = 8
) -> Markup:
    """The `top` busiest resources, then the rest as one averaged row."""
    shown, rest = rows[:top], rows[top:]
    bars = [Bar(row.name, row.ratio, _percent(row.ratio), alert=row.overbooked) for row in shown]
    if rest:
        average = sum(row.ratio for row in rest) / len(rest)
        bars.append(Bar(f"+ {len(rest)} more", average, f"avg {_percent(average)}", colour=SKY))
    described = [f"{row.name} {_percent(row.ratio)}" for row in shown]
    described += [f"overbooked: {row.name}" for row in shown if row.overbooked]
    if rest:
        described.append(f"{len(rest)} more averaging {bars[-1].text.removeprefix('avg ')}")
    summary = "; ".join(described) if described else "No resources."
    return horizontal_bar_chart(chart_id, title, bars, slots=top + 1, summary=summary)


def conflicts_chart(chart_id: str, title: str, counts: Sequence[ConflictCount]) -> Markup:
    """Open conflicts per type, scaled to the commonest; warnings orange, errors blue.

    Vermillion stays reserved for overbooked bars, and it is hard to tell from orange.
    """
    most = max((count.count for count in counts), default=0)
    bars = [
        Bar(
            CONFLICT_LABELS[count.type],
            count.count / most if most else 0.0,
            str(count.count),
            colour=ORANGE if count.severity is Severity.WARNING else BLUE,
        )
        for count in counts
    ]
    summary = "; ".join(f"{count.type} {count.count}" for count in counts) or "No conflicts."
    return horizontal_bar_chart(chart_id, title, bars, slots=len(bars), summary=summary)


def throughput_chart(chart_id: str, title: str, hours: Sequence[HourCount]) -> Markup:
    """Tasks completed per plant-local hour; the tallest column fills the plot."""
    most = max((hour.completed for hour in hours), default=0)
    bars = [
        Bar(hour.label[:2], hour.completed / most if most else 0.0, str(hour.completed))
        for hour in hours
    ]
    summary = "; ".join(f"{hour.label}: {hour.completed}" for hour in hours) or "No hours."
    return vertical_bar_chart(chart_id, title, bars, slots=len(bars), summary=summary)


def on_time_gauge(chart_id: str, title: str, on_time: OnTimeRate) -> Markup:
    """A donut filled to the on-time share, the percentage in its middle."""
    radius, stroke, centre = 150, 44, (WIDTH / 2, 300)
    circumference = 2 * pi * radius
    rate = on_time.rate
    filled = circumference * (rate or 0.0)
    big = "-" if rate is None else _percent(rate)
    small = (
        "no job finished"
        if rate is None
        else f"{on_time.on_time_jobs} of {on_time.finished_jobs} jobs on time"
    )
    cx, cy = centre
    body = (
        f'<circle class="track" cx="{cx:.0f}" cy="{cy}" r="{radius}" fill="none" '
        f'stroke="currentColor" stroke-opacity="0.12" stroke-width="{stroke}"/>'
        f'<circle class="arc" cx="{cx:.0f}" cy="{cy}" r="{radius}" fill="none" stroke="{GREEN}" '
        f'stroke-width="{stroke}" stroke-dasharray="{filled:.1f} {circumference:.1f}" '
        f'transform="rotate(-90 {cx:.0f} {cy})"/>'
        f'<text x="{cx:.0f}" y="{cy + 30}" text-anchor="middle" font-size="88" '
        f'font-weight="bold">{escape(big)}</text>'
        f'<text x="{cx:.0f}" y="{cy + radius + 70}" text-anchor="middle" '
        f'font-size="{_TEXT_SIZE + 2}">{escape(small)}</text>'
    )
    summary = f"On-time rate {big}: {small}."
    return _svg(chart_id, title, summary, 560, body)


def planned_vs_done_chart(chart_id: str, title: str, today: PlannedVsDone) -> Markup:
    """Planned against done today, tasks and minutes, each pair on its own scale."""
    bars: list[Bar] = []
    for unit, planned, done in (
        ("tasks", today.planned_tasks, today.done_tasks),
        ("minutes", today.planned_minutes, today.done_minutes),
    ):
        most = max(planned, done)
        bars.append(
            Bar(f"{unit} planned", planned / most if most else 0.0, str(planned), colour=SKY)
        )
        bars.append(Bar(f"{unit} done", done / most if most else 0.0, str(done)))
    summary = (
        f"{today.day.isoformat()}: {today.planned_tasks} tasks planned, {today.done_tasks} done; "
        f"{today.planned_minutes} minutes planned, {today.done_minutes} done."
    )
    return horizontal_bar_chart(chart_id, title, bars, slots=4, summary=summary)


def _svg(chart_id: str, title: str, summary: str, height: int, body: str) -> Markup:
    ident = _ident(chart_id)
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{ident}" class="chart" role="img" '
        f'viewBox="0 0 {WIDTH} {height}" preserveAspectRatio="xMidYMid meet" '
        f'aria-labelledby="{ident}-title {ident}-desc" font-family="{_FONT}" '
        f'fill="currentColor">'
        f'<title id="{ident}-title">{escape(title)}</title>'
        f'<desc id="{ident}-desc">{escape(summary)}</desc>'
        f'<text x="24" y="46" font-size="{_TITLE_SIZE}" font-weight="bold" aria-hidden="true">'
        f"{escape(title)}</text>"
        f"{body}</svg>"
    )


def _ident(chart_id: str) -> str:
    # Ids end up in attribute values and in aria-labelledby's id list: keep them plain.
    return re.sub(r"[^A-Za-z0-9_-]", "-", chart_id) or "chart"


def _shorten(label: str) -> str:
    # Cut before escaping, so an entity like &amp; is never split in half.
    return label if len(label) <= _LABEL_CHARS else label[: _LABEL_CHARS - 1] + "…"


def _percent(share: float) -> str:
    return f"{round(share * 100)} %"


def _clamp(share: float) -> float:
    return min(max(share, 0.0), 1.0)
