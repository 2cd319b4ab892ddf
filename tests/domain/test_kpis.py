from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from app.domain.conflicts import Conflict, ConflictType, Severity
from app.domain.kpis import (
    ConflictCount,
    EquipmentDown,
    LateJob,
    dashboard,
    equipment_down,
    late_jobs,
    on_time_rate,
    open_conflicts_by_type,
    planned_vs_done_today,
    plant_day,
    throughput_per_hour,
    utilization_by_equipment,
    utilization_by_operator,
)
from app.domain.plan import (
    Assignment,
    Equipment,
    EquipmentStatus,
    Interval,
    Job,
    JobStatus,
    Operator,
    Plan,
    Task,
    TaskStatus,
    WeeklyShift,
)

BERLIN = "Europe/Berlin"
# Wednesday 15 January 2025: Berlin is UTC+1 (CET), so local = UTC + 1 h.
WEDNESDAY = datetime(2025, 1, 15, tzinfo=UTC)
NOW = WEDNESDAY + timedelta(hours=13, minutes=20)  # 14:20 in Berlin
# The Berlin day of NOW: 14 Jan 23:00 UTC to 15 Jan 23:00 UTC, 1440 minutes.
TODAY = Interval(datetime(2025, 1, 14, 23, tzinfo=UTC), datetime(2025, 1, 15, 23, tzinfo=UTC))
WEEK_BEFORE_NOW = Interval(NOW - timedelta(days=7), NOW)

PRESS = Equipment(10, "Press 1", "press", frozenset({"press"}))
LATHE = Equipment(11, "Lathe 2", "lathe", frozenset({"turning"}))
ANNA = Operator(1, "Anna Weber", {}, tuple(WeeklyShift(d, time(6), time(14)) for d in range(5)))
BEN = Operator(2, "Ben Ito", {})


def berlin(hour: int, minute: int = 0, *, day: int = 15) -> datetime:
    """Berlin wall-clock time on a January day, as UTC (CET is UTC+1)."""
    return datetime(2025, 1, day, hour, minute, tzinfo=UTC) - timedelta(hours=1)


def job(job_id: int, due: datetime | None, status: JobStatus = JobStatus.OPEN) -> Job:
    return Job(job_id, f"Order {job_id}", due=due, status=status)


def done(task_id: int, job_id: int, end: datetime, minutes: int = 60) -> Task:
    return Task(
        task_id,
        job_id,
        f"Step {task_id}",
        minutes,
        status=TaskStatus.DONE,
        actual_start=end - timedelta(minutes=minutes),
        actual_end=end,
    )


def open_task(
    task_id: int, job_id: int, minutes: int = 60, status: TaskStatus = TaskStatus.SCHEDULED
) -> Task:
    return Task(task_id, job_id, f"Step {task_id}", minutes, status=status)


def booked(
    task: Task, start: datetime, end: datetime, *, operator: int = 1, equipment: int = 10
) -> Assignment:
    return Assignment(task.id, operator, equipment, start, end)


def plant(
    *tasks: Task,
    jobs: tuple[Job, ...] = (),
    assignments: tuple[Assignment, ...] = (),
    equipment: tuple[Equipment, ...] = (PRESS, LATHE),
    operators: tuple[Operator, ...] = (ANNA, BEN),
) -> Plan:
    return Plan(
        equipment={e.id: e for e in equipment},
        operators={o.id: o for o in operators},
        jobs={j.id: j for j in jobs},
        tasks={t.id: t for t in tasks},
        assignments={a.task_id: a for a in assignments},
        timezone=BERLIN,
    )


EMPTY = Plan(timezone=BERLIN)


def test_task_has_no_actual_times_until_the_floor_reports_them() -> None:
    task = Task(1, 1, "Cut", 30)

    assert (task.actual_start, task.actual_end) == (None, None)


# On-time rate ------------------------------------------------------------------------


def test_on_time_rate_counts_jobs_finished_in_the_window() -> None:
    floor = plant(
        # Job 1 finishes 11:45 (its last task), due 12:00: on time.
        done(1, 1, berlin(9, 30)),
        done(2, 1, berlin(11, 45)),
        # Job 2 finishes 10:30, due 10:00: late.
        done(3, 2, berlin(10, 30)),
        # Job 3 is not finished: one task still scheduled.
        done(4, 3, berlin(13, 10)),
        open_task(5, 3),
        # Job 4 finished eight days ago: outside the week.
        done(6, 4, berlin(10, day=7)),
        # Job 5 has no due time; job 6 was cancelled: neither counts.
        done(7, 5, berlin(8)),
        done(8, 6, berlin(8)),
        jobs=(
            job(1, berlin(12)),
            job(2, berlin(10)),
            job(3, berlin(16)),
            job(4, berlin(12, day=7)),
            job(5, None),
            job(6, berlin(12), status=JobStatus.CANCELLED),
        ),
    )

    rate = on_time_rate(floor, window=WEEK_BEFORE_NOW)

    # Finished in the week: jobs 1 and 2; on time: job 1. 1 / 2 = 0.5
    assert (rate.finished_jobs, rate.on_time_jobs, rate.rate) == (2, 1, 0.5)


def test_finishing_exactly_at_the_due_time_is_on_time() -> None:
    floor = plant(done(1, 1, berlin(12)), jobs=(job(1, berlin(12)),))

    assert on_time_rate(floor, window=WEEK_BEFORE_NOW).rate == 1.0


def test_job_with_a_done_task_missing_its_actual_end_is_left_out() -> None:
    undated = Task(2, 1, "Step 2", 60, status=TaskStatus.DONE)
    floor = plant(done(1, 1, berlin(9)), undated, jobs=(job(1, berlin(12)),))

    assert on_time_rate(floor, window=WEEK_BEFORE_NOW).finished_jobs == 0


def test_on_time_rate_of_an_empty_plant_is_none() -> None:
    rate = on_time_rate(EMPTY, window=WEEK_BEFORE_NOW)

    assert (rate.finished_jobs, rate.rate) == (0, None)


# Planned vs done today ---------------------------------------------------------------


def test_planned_vs_done_today_uses_the_berlin_day() -> None:
    late_evening, after_midnight = open_task(1, 1, 45), open_task(2, 1, 90)
    morning, yesterday = open_task(3, 1, 30), open_task(4, 1, 20)
    floor = plant(
        late_evening,
        after_midnight,
        morning,
        yesterday,
        # Done 00:15 Berlin today, which is still 14 January in UTC.
        done(5, 1, berlin(0, 15), minutes=40),
        # Done 23:50 Berlin yesterday: not today.
        done(6, 1, berlin(23, 50, day=14), minutes=25),
        # Done, but with no actual end: cannot be placed on a day.
        Task(7, 1, "Step 7", 15, status=TaskStatus.DONE),
        assignments=(
            # Ends 23:30 Berlin (22:30 UTC): today.
            booked(late_evening, berlin(22, 45), berlin(23, 30)),
            # Ends 00:30 Berlin on the 16th (23:30 UTC on the 15th): tomorrow.
            booked(after_midnight, berlin(23), berlin(0, 30, day=16)),
            booked(morning, berlin(7), berlin(7, 30)),
            booked(yesterday, berlin(22, day=14), berlin(22, 20, day=14)),
        ),
    )

    today = planned_vs_done_today(floor, now=NOW, timezone=BERLIN)

    assert today.window == TODAY
    assert today.day.isoformat() == "2025-01-15"
    # Planned: tasks 1 and 3 -> 2 tasks, 45 + 30 = 75 minutes.
    assert (today.planned_tasks, today.planned_minutes) == (2, 75)
    # Done: task 5 only -> 1 task, 40 minutes.
    assert (today.done_tasks, today.done_minutes) == (1, 40)


def test_today_is_23_hours_on_the_spring_dst_sunday() -> None:
    # 30 March 2025: Berlin jumps from 02:00 CET to 03:00 CEST.
    sunday_noon = datetime(2025, 3, 30, 10, tzinfo=UTC)

    day = plant_day(sunday_noon, BERLIN)

    # 00:00 CET = 23:00 UTC the day before; next midnight 00:00 CEST = 22:00 UTC.
    assert day == Interval(
        datetime(2025, 3, 29, 23, tzinfo=UTC), datetime(2025, 3, 30, 22, tzinfo=UTC)
    )
    assert day.end - day.start == timedelta(hours=23)


def test_planned_vs_done_of_an_empty_plant_is_all_zero() -> None:
    today = planned_vs_done_today(EMPTY, now=NOW, timezone=BERLIN)

    assert (today.planned_tasks, today.done_tasks, today.planned_minutes, today.done_minutes) == (
        0,
        0,
        0,
        0,
    )


# Utilization -------------------------------------------------------------------------


def test_equipment_utilization_subtracts_downtime_and_clips_to_the_window() -> None:
    lathe_serviced = Equipment(
        11,
        "Lathe 2",
        "lathe",
        frozenset(),
        # 12:00-14:00 Berlin, listed twice (overlapping): 120 minutes, not 240.
        downtime=(
            Interval(berlin(12), berlin(14)),
            Interval(berlin(12, 30), berlin(13, 30)),
        ),
    )
    tasks = [open_task(n, 1) for n in range(1, 5)]
    floor = plant(
        *tasks,
        equipment=(PRESS, lathe_serviced),
        assignments=(
            # Press: 06:00-12:00 Berlin = 360 minutes.
            booked(tasks[0], berlin(6), berlin(12), equipment=10),
            # Lathe: 02:00-11:00 = 540 and 14:00-16:00 = 120 ...
            booked(tasks[1], berlin(2), berlin(11), equipment=11),
            booked(tasks[2], berlin(14), berlin(16), equipment=11),
            # ... and 23:00 to 01:00 tomorrow, of which 60 minutes are today.
            booked(tasks[3], berlin(23), berlin(1, day=16), equipment=11),
        ),
    )

    lathe, press = utilization_by_equipment(floor, window=TODAY)

    # Lathe: (540 + 120 + 60) / (1440 - 120) = 720 / 1320 = 0.5454...
    assert (lathe.name, lathe.booked_minutes, lathe.available_minutes) == ("Lathe 2", 720, 1320)
    assert lathe.ratio == pytest.approx(720 / 1320)
    # Press: 360 / 1440 = 0.25
    assert (press.name, press.booked_minutes, press.available_minutes) == ("Press 1", 360, 1440)
    assert press.ratio == 0.25
    assert not lathe.overbooked and not press.overbooked


def test_double_booked_equipment_is_clamped_and_flagged() -> None:
    first, second = open_task(1, 1), open_task(2, 1)
    window = Interval(berlin(6), berlin(14))  # 480 minutes, no downtime
    floor = plant(
        first,
        second,
        equipment=(PRESS,),
        assignments=(
            booked(first, berlin(6), berlin(12)),  # 360
            booked(second, berlin(8), berlin(14)),  # 360, overlapping the first
        ),
    )

    (press,) = utilization_by_equipment(floor, window=window)

    # 360 + 360 = 720 booked of 480: 1.5, shown as 1.0 and flagged.
    assert (press.booked_minutes, press.available_minutes) == (720, 480)
    assert (press.ratio, press.overbooked) == (1.0, True)


def test_operator_utilization_is_booked_over_shift_minutes() -> None:
    night_shift = Operator(3, "Cem Aydin", {})  # no shifts at all
    tasks = [open_task(n, 1) for n in range(1, 4)]
    floor = plant(
        *tasks,
        operators=(ANNA, BEN, night_shift),
        assignments=(
            # Anna works Wednesdays 06:00-14:00 Berlin: 480 minutes available.
            booked(tasks[0], berlin(6), berlin(8), operator=1),  # 120
            booked(tasks[1], berlin(9), berlin(13), operator=1),  # 240
            # Cem has no shift but is booked for an hour.
            booked(tasks[2], berlin(20), berlin(21), operator=3),
        ),
    )

    by_name = {
        row.name: row for row in utilization_by_operator(floor, window=TODAY, timezone=BERLIN)
    }

    anna, ben, cem = by_name["Anna Weber"], by_name["Ben Ito"], by_name["Cem Aydin"]
    # Anna: (120 + 240) / 480 = 0.75
    assert (anna.booked_minutes, anna.available_minutes, anna.ratio) == (360, 480, 0.75)
    # Ben: nothing available, nothing booked: 0, not a division by zero.
    assert (ben.available_minutes, ben.ratio, ben.overbooked) == (0, 0.0, False)
    # Cem: 60 booked of 0 available: full and flagged.
    assert (cem.booked_minutes, cem.ratio, cem.overbooked) == (60, 1.0, True)


def test_utilization_is_ranked_busiest_first() -> None:
    tasks = [open_task(n, 1) for n in range(1, 3)]
    floor = plant(
        *tasks,
        assignments=(
            booked(tasks[0], berlin(6), berlin(7), equipment=10),  # Press 60 / 1440
            booked(tasks[1], berlin(6), berlin(8), equipment=11),  # Lathe 120 / 1440
        ),
    )

    assert [row.name for row in utilization_by_equipment(floor, window=TODAY)] == [
        "Lathe 2",
        "Press 1",
    ]


def test_the_most_overbooked_lead_although_both_show_100_percent() -> None:
    tasks = [open_task(n, 1) for n in range(1, 5)]
    window = Interval(berlin(6), berlin(14))  # 480 minutes
    floor = plant(
        *tasks,
        assignments=(
            # Lathe: 480 + 120 = 600 of 480 -> load 1.25
            booked(tasks[0], berlin(6), berlin(14), equipment=11),
            booked(tasks[1], berlin(6), berlin(8), equipment=11),
            # Press: 480 + 480 = 960 of 480 -> load 2.0
            booked(tasks[2], berlin(6), berlin(14), equipment=10),
            booked(tasks[3], berlin(6), berlin(14), equipment=10),
        ),
    )

    rows = utilization_by_equipment(floor, window=window)

    # Both clamp to 1.0; the press (2.0) leads the lathe (1.25) although "L" < "P".
    assert [(row.name, row.ratio, row.overbooked) for row in rows] == [
        ("Press 1", 1.0, True),
        ("Lathe 2", 1.0, True),
    ]


def test_utilization_of_an_empty_plant_is_empty() -> None:
    assert utilization_by_equipment(EMPTY, window=TODAY) == ()
    assert utilization_by_operator(EMPTY, window=TODAY, timezone=BERLIN) == ()


# Equipment down ----------------------------------------------------------------------


def test_equipment_down_counts_the_work_waiting_on_it() -> None:
    back_at_16 = Equipment(
        10, "Press 1", "press", frozenset(), EquipmentStatus.DOWN, expected_back=berlin(16)
    )
    unknown_return = Equipment(11, "Lathe 2", "lathe", frozenset(), EquipmentStatus.MAINTENANCE)
    serviced_now = Equipment(
        12, "Drill 3", "drill", frozenset(), downtime=(Interval(berlin(14), berlin(15)),)
    )
    running = Equipment(13, "Saw 4", "saw", frozenset())
    t = [open_task(n, 1) for n in range(1, 8)]
    t[2] = done(3, 1, berlin(14, 10))
    floor = plant(
        *t,
        equipment=(back_at_16, unknown_return, serviced_now, running),
        assignments=(
            # Press, back 16:00 (now is 14:20):
            booked(t[0], berlin(14), berlin(15), equipment=10),  # overlaps: affected
            booked(t[1], berlin(16), berlin(17), equipment=10),  # after it is back: not
            booked(t[2], berlin(13), berlin(15), equipment=10),  # done: not
            booked(t[3], berlin(12), berlin(13), equipment=10),  # ended before now: not
            # Lathe, return unknown: everything not done that ends after now.
            booked(t[4], berlin(15), berlin(16), equipment=11),
            booked(t[5], berlin(9, day=20), berlin(10, day=20), equipment=11),
            # Drill, in planned downtime until 15:00.
            booked(t[6], berlin(14, 30), berlin(15, 30), equipment=12),
        ),
    )

    assert equipment_down(floor, now=NOW) == (
        EquipmentDown(12, "Drill 3", EquipmentStatus.MAINTENANCE, berlin(15), 1, planned=True),
        EquipmentDown(11, "Lathe 2", EquipmentStatus.MAINTENANCE, None, 2),
        EquipmentDown(10, "Press 1", EquipmentStatus.DOWN, berlin(16), 1),
    )


def test_no_equipment_down_in_an_empty_plant() -> None:
    assert equipment_down(EMPTY, now=NOW) == ()


# Conflicts ---------------------------------------------------------------------------


def test_open_conflicts_by_type_has_a_row_for_every_type() -> None:
    conflicts = [
        Conflict(ConflictType.OPERATOR_DOUBLE_BOOKED, (1, 2), "x"),
        Conflict(ConflictType.OPERATOR_DOUBLE_BOOKED, (3, 4), "x"),
        Conflict(ConflictType.LATE, (5,), "x"),
    ]

    counts = open_conflicts_by_type(conflicts)

    assert [row.type for row in counts] == list(ConflictType)
    assert {row.type: row.count for row in counts if row.count} == {
        ConflictType.OPERATOR_DOUBLE_BOOKED: 2,
        ConflictType.LATE: 1,
    }
    assert ConflictCount(ConflictType.LATE, Severity.WARNING, 1) in counts
    assert sum(row.count for row in open_conflicts_by_type([])) == 0


# Late jobs ---------------------------------------------------------------------------


def test_late_jobs_are_overdue_or_projected_late() -> None:
    t = {n: open_task(n, n) for n in range(1, 7)}
    t[1] = done(1, 1, berlin(11))  # job 1 done early
    t[4] = open_task(4, 4, status=TaskStatus.IN_PROGRESS)
    floor = plant(
        *t.values(),
        open_task(7, 3),  # job 3 also has a task not booked anywhere
        jobs=(
            job(1, berlin(12)),  # all done: not late
            job(2, berlin(18)),  # booked to end 17:00: fine
            job(3, berlin(16)),  # booked to end 17:00: 60 min projected late
            job(4, berlin(13)),  # due 13:00, booked end 14:00 passed: overdue by now
            job(5, berlin(14)),  # booked to end 16:30: overdue and projected 150 min late
            job(6, None),  # no due time: never late
            job(7, berlin(9), status=JobStatus.DONE),  # closed by the office: not late
        ),
        assignments=(
            booked(t[2], berlin(16), berlin(17)),
            booked(t[3], berlin(15), berlin(17)),
            booked(t[4], berlin(12), berlin(14)),
            booked(t[5], berlin(15), berlin(16, 30)),
        ),
    )

    assert late_jobs(floor, now=NOW) == (
        # max(14:20, 16:30) - 14:00 = 150 minutes
        LateJob(5, "Order 5", berlin(14), berlin(16, 30), timedelta(minutes=150), True, 0),
        # max(14:20, 14:00) - 13:00 = 80 minutes: it cannot finish before now
        LateJob(4, "Order 4", berlin(13), berlin(14), timedelta(minutes=80), True, 0),
        # max(14:20, 17:00) - 16:00 = 60 minutes, and one task still unscheduled
        LateJob(3, "Order 3", berlin(16), berlin(17), timedelta(minutes=60), False, 1),
    )


def test_a_job_without_tasks_is_late_once_past_due() -> None:
    floor = plant(jobs=(job(1, berlin(14)),))

    # 14:20 - 14:00 = 20 minutes
    assert late_jobs(floor, now=NOW) == (
        LateJob(1, "Order 1", berlin(14), None, timedelta(minutes=20), True, 0),
    )


# Throughput --------------------------------------------------------------------------


def test_throughput_counts_completions_per_local_hour() -> None:
    floor = plant(
        done(1, 1, berlin(11, 59)),  # before the first hour shown
        done(2, 1, berlin(12)),  # 12:00 bucket (start is inclusive)
        done(3, 1, berlin(13, 59)),  # 13:00 bucket
        done(4, 1, berlin(14, 10)),  # 14:00 bucket, the current hour
        done(5, 1, berlin(14, 15)),  # 14:00 bucket
        open_task(6, 1),  # not done: never counted
    )

    hours = throughput_per_hour(floor, now=NOW, timezone=BERLIN, hours=3)

    assert [(h.label, h.completed) for h in hours] == [("12:00", 1), ("13:00", 1), ("14:00", 2)]
    assert hours[0].start == berlin(12)


def test_throughput_hours_follow_a_half_hour_offset() -> None:
    # India is UTC+5:30: 10:20 UTC is 15:50 local, in the 15:00 hour that began 09:30 UTC.
    now = datetime(2025, 1, 15, 10, 20, tzinfo=UTC)
    floor = plant(done(1, 1, datetime(2025, 1, 15, 9, 29, tzinfo=UTC)), done(2, 1, now))

    hours = throughput_per_hour(floor, now=now, timezone="Asia/Kolkata", hours=2)

    # 09:29 UTC is 14:59 local (the 14:00 hour); 10:20 UTC is in the 15:00 hour.
    assert [(h.start.time(), h.label, h.completed) for h in hours] == [
        (time(8, 30), "14:00", 1),
        (time(9, 30), "15:00", 1),
    ]


def test_throughput_repeats_the_hour_when_the_clocks_go_back() -> None:
    # 26 October 2025 in Berlin: 02:00-03:00 happens twice (CEST, then CET).
    now = datetime(2025, 10, 26, 1, 30, tzinfo=UTC)  # 02:30 CET, the second time round

    hours = throughput_per_hour(EMPTY, now=now, timezone=BERLIN, hours=3)

    assert [h.label for h in hours] == ["01:00", "02:00", "02:00"]
    assert [h.start.hour for h in hours] == [23, 0, 1]


def test_throughput_of_an_empty_plant_is_zero_every_hour() -> None:
    hours = throughput_per_hour(EMPTY, now=NOW, timezone=BERLIN)

    assert len(hours) == 12
    assert {h.completed for h in hours} == {0}


# The whole wall ----------------------------------------------------------------------


def test_dashboard_gathers_every_kpi() -> None:
    task = open_task(1, 1)
    floor = plant(
        task,
        done(2, 2, berlin(10)),
        jobs=(job(1, berlin(13)), job(2, berlin(12))),
        assignments=(booked(task, berlin(12), berlin(15)),),
    )
    conflicts = [Conflict(ConflictType.LATE, (1,), "late", job_id=1)]

    wall = dashboard(floor, conflicts, now=NOW, timezone=BERLIN)

    assert wall.on_time.rate == 1.0
    assert (wall.today.planned_tasks, wall.today.done_tasks) == (1, 1)
    assert wall.equipment_utilization[0].booked_minutes == 180
    assert [row.name for row in wall.operator_utilization] == ["Anna Weber", "Ben Ito"]
    assert [late.job_id for late in wall.late_jobs] == [1]
    assert wall.open_conflicts == open_conflicts_by_type(conflicts)
    assert sum(hour.completed for hour in wall.throughput) == 1  # 10:00 is within 12 hours
    assert wall.equipment_down == ()


def test_dashboard_of_an_empty_plant() -> None:
    wall = dashboard(EMPTY, [], now=NOW, timezone=BERLIN)

    assert wall.on_time.rate is None
    assert (wall.late_jobs, wall.equipment_down, wall.equipment_utilization) == ((), (), ())
