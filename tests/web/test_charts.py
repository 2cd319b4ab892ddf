from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta

import pytest
from markupsafe import Markup

from app.domain.conflicts import Conflict, ConflictType
from app.domain.kpis import (
    HourCount,
    OnTimeRate,
    PlannedVsDone,
    Utilization,
    open_conflicts_by_type,
)
from app.domain.plan import Interval
from app.web.charts import (
    Bar,
    conflicts_chart,
    horizontal_bar_chart,
    on_time_gauge,
    planned_vs_done_chart,
    throughput_chart,
    utilization_chart,
)

SVG = "{http://www.w3.org/2000/svg}"
NOON = datetime(2025, 1, 15, 12, tzinfo=UTC)
# The horizontal chart's bar track is 440 units long.
TRACK = 440


def parse(chart: Markup) -> ET.Element:
    return ET.fromstring(str(chart))


def bar_lengths(svg: ET.Element, attribute: str = "width") -> list[float]:
    return [float(rect.attrib[attribute]) for rect in svg.iter(f"{SVG}rect") if _is_bar(rect)]


def texts(svg: ET.Element) -> list[str]:
    return [element.text or "" for element in svg.iter(f"{SVG}text")]


def child(svg: ET.Element, tag: str) -> ET.Element:
    found = svg.find(f"{SVG}{tag}")
    assert found is not None, f"no <{tag}>"
    return found


def child_text(svg: ET.Element, tag: str) -> str:
    return child(svg, tag).text or ""


def rows(svg: ET.Element) -> list[tuple[str, float, str]]:
    """(label, bar width, value) of each row of a horizontal bar chart."""
    found = []
    for row in svg.iter(f"{SVG}g"):
        label, value = (element.text or "" for element in row.iter(f"{SVG}text"))
        (bar,) = (rect for rect in row.iter(f"{SVG}rect") if _is_bar(rect))
        found.append((label, float(bar.attrib["width"]), value))
    return found


def _is_bar(rect: ET.Element) -> bool:
    return rect.attrib.get("class") == "bar"


def machines(*ratios: float) -> list[Utilization]:
    return [Utilization(n, f"Press {n}", ratio * 480, 480) for n, ratio in enumerate(ratios, 1)]


def every_chart() -> list[Markup]:
    hours = [HourCount(NOON + timedelta(hours=n), f"{12 + n}:00", n) for n in range(3)]
    return [
        utilization_chart("equipment", "Equipment today", machines(0.5, 0.25)),
        conflicts_chart("conflicts", "Open conflicts", open_conflicts_by_type([])),
        throughput_chart("throughput", "Tasks done per hour", hours),
        on_time_gauge("on-time", "On time, last 7 days", OnTimeRate(Interval(NOON, NOON), 4, 3)),
        planned_vs_done_chart(
            "today", "Today", PlannedVsDone(date(2025, 1, 15), Interval(NOON, NOON), 8, 6, 480, 300)
        ),
    ]


@pytest.mark.parametrize("chart", every_chart())
def test_every_chart_is_an_accessible_svg_with_a_fixed_viewbox(chart: Markup) -> None:
    svg = parse(chart)

    assert svg.tag == f"{SVG}svg"
    assert svg.attrib["role"] == "img"
    title_id, desc_id = svg.attrib["aria-labelledby"].split()
    assert child(svg, "title").attrib["id"] == title_id
    assert child(svg, "desc").attrib["id"] == desc_id
    assert svg.attrib["viewBox"].startswith("0 0 960 ")


def test_labels_are_escaped_and_stay_text() -> None:
    sneaky = [Utilization(1, "<script>alert(1)</script>", 60, 120)]

    chart = utilization_chart("x", 'Machines & "friends"', sneaky)

    assert "<script>" not in chart
    svg = parse(chart)
    assert svg.find(f".//{SVG}script") is None
    # The label is cut to 18 characters, but what is left is the literal text.
    assert "<script>alert(1)<…" in texts(svg)
    assert child_text(svg, "title") == 'Machines & "friends"'
    assert "<script>alert(1)</script> 50 %" in child_text(svg, "desc")


def test_chart_ids_cannot_break_out_of_their_attribute() -> None:
    svg = parse(utilization_chart('a" onload="evil', "Machines", []))

    assert svg.attrib["id"] == "a--onload--evil"
    assert "onload" not in svg.attrib


def test_utilization_bars_are_proportional_to_the_ratio() -> None:
    svg = parse(utilization_chart("equipment", "Equipment", machines(1.0, 0.5, 0.25)))

    # 440 x 1.0, 440 x 0.5, 440 x 0.25
    assert bar_lengths(svg) == [440.0, 220.0, 110.0]
    assert [t for t in texts(svg) if t.endswith("%")] == ["100 %", "50 %", "25 %"]


def test_top_n_then_the_rest_summarised_as_one_average_row() -> None:
    rows = machines(0.9, 0.8, 0.4, 0.2)

    svg = parse(utilization_chart("equipment", "Equipment", rows, top=2))

    # Two bars for the top two, one for the rest at (0.4 + 0.2) / 2 = 0.3 -> 132 units
    assert bar_lengths(svg) == [396.0, 352.0, 132.0]
    assert "+ 2 more" in texts(svg)
    assert "avg 30 %" in texts(svg)


def test_the_number_of_rows_and_the_height_do_not_grow_with_the_plant() -> None:
    small = parse(utilization_chart("e", "E", machines(0.5) * 3, top=8))
    large = parse(utilization_chart("e", "E", machines(0.5) * 300, top=8))

    assert small.attrib["viewBox"] == large.attrib["viewBox"]
    assert len(bar_lengths(large)) == 9  # 8 bars + the rest


def test_overbooked_resource_is_marked_by_more_than_colour() -> None:
    double_booked = [Utilization(1, "Press 1", 720, 480)]

    svg = parse(utilization_chart("e", "E", double_booked))

    assert bar_lengths(svg) == [440.0]  # clamped to the full track
    assert "100 % !" in texts(svg)
    assert "overbooked: Press 1" in child_text(svg, "desc")


def test_out_of_range_shares_are_clamped() -> None:
    bars = [Bar("below", -0.5, "-50"), Bar("above", 1.7, "170")]

    svg = parse(horizontal_bar_chart("b", "B", bars, slots=2, summary="s"))

    assert bar_lengths(svg) == [0.0, 440.0]


def test_throughput_columns_scale_to_the_busiest_hour() -> None:
    hours = [
        HourCount(NOON + timedelta(hours=n), f"{12 + n}:00", count)
        for n, count in enumerate((0, 2, 4))
    ]

    svg = parse(throughput_chart("t", "Throughput", hours))

    # The plot is 340 units tall: 0 / 4, 2 / 4 and 4 / 4 of it.
    assert bar_lengths(svg, "height") == [0.0, 170.0, 340.0]
    assert [t for t in texts(svg) if t in {"12", "13", "14"}] == ["12", "13", "14"]


def test_throughput_of_a_quiet_shift_draws_empty_columns() -> None:
    hours = [HourCount(NOON, "12:00", 0)]

    assert bar_lengths(parse(throughput_chart("t", "T", hours)), "height") == [0.0]


def test_on_time_gauge_fills_the_ring_to_the_rate() -> None:
    svg = parse(on_time_gauge("g", "On time", OnTimeRate(Interval(NOON, NOON), 4, 3)))

    arc = next(c for c in svg.iter(f"{SVG}circle") if c.attrib.get("class") == "arc")
    filled, circumference = (float(part) for part in arc.attrib["stroke-dasharray"].split())
    # 3 of 4 = 75 % of 2 pi 150 = 942.5
    assert circumference == pytest.approx(942.5, abs=0.05)
    assert filled == pytest.approx(0.75 * circumference, abs=0.1)
    assert "75 %" in texts(svg)
    assert "3 of 4 jobs on time" in texts(svg)


def test_on_time_gauge_without_finished_jobs_says_so() -> None:
    svg = parse(on_time_gauge("g", "On time", OnTimeRate(Interval(NOON, NOON), 0, 0)))

    assert "no job finished" in texts(svg)


def test_planned_vs_done_pairs_share_a_scale() -> None:
    today = PlannedVsDone(date(2025, 1, 15), Interval(NOON, NOON), 8, 6, 480, 600)

    svg = parse(planned_vs_done_chart("p", "Today", today))

    # Tasks: 8 planned is longest, 6 / 8 x 440 = 330.
    # Minutes: 600 done is longest, 480 / 600 x 440 = 352.
    assert bar_lengths(svg) == [440.0, 330.0, 352.0, 440.0]


def test_planned_vs_done_on_a_day_with_nothing_planned() -> None:
    today = PlannedVsDone(date(2025, 1, 15), Interval(NOON, NOON), 0, 0, 0, 0)

    assert bar_lengths(parse(planned_vs_done_chart("p", "Today", today))) == [0.0] * 4


def test_conflict_bars_scale_to_the_commonest_type() -> None:
    conflicts = [Conflict(ConflictType.OUTSIDE_SHIFT, (n,), "x") for n in range(4)]
    conflicts.append(Conflict(ConflictType.LATE, (9,), "x"))

    svg = parse(conflicts_chart("c", "Conflicts", open_conflicts_by_type(conflicts)))

    by_label = {label: (width, value) for label, width, value in rows(svg)}
    assert len(by_label) == len(ConflictType)
    # outside shift: 4 / 4 x 440 = 440; late: 1 / 4 x 440 = 110; the rest 0
    assert by_label["outside shift"] == (440.0, "4")
    assert by_label["late"] == (110.0, "1")
    assert by_label["skill mismatch"] == (0.0, "0")
    assert "outside_shift 4" in child_text(svg, "desc")


def test_the_same_input_gives_the_same_svg() -> None:
    assert every_chart() == every_chart()
