"""A believable metal-working and assembly plant for demos and load tests.

Machining (CNC mills and lathes) runs three shifts, fabrication, paint,
assembly and test run two. Jobs follow product routings (op 10, 20, ...);
gearboxes and hydraulic power units are assembled from sub-assembly jobs made
first. The first days are planned by a simple forward scheduler that respects
skills, capabilities, shifts, maintenance and dependencies; then a handful of
realistic disturbances (a late material delivery, unplanned downtime, a
double booking...) give the board a few conflicts of several kinds. The rest
waits in the tray. Same seed and start, same plant.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from typing import Literal, NamedTuple

from app.domain.plan import WeeklyShift
from app.domain.plants.demo_schedule import (
    ShopFloor,
    add_disturbances,
    plan_forward,
    record_history,
)
from app.domain.plants.plant_data import (
    CalendarException,
    DowntimeWindow,
    PlantData,
    PlantEquipment,
    PlantJob,
    PlantOperator,
    PlantTask,
    PlantUser,
)

DemoSize = Literal["small", "large"]
DEMO_PASSWORD = "takt-demo"


@dataclass(frozen=True, slots=True)
class _Kind:
    key: str
    type: str
    skill: str
    capabilities: tuple[str, ...]
    # Each unit has one of these (or none), in turn, so every option exists.
    options: tuple[str, ...]

    @property
    def shifts(self) -> tuple[str, ...]:
        # Machining runs round the clock; the other areas run two shifts.
        return ("early", "late", "night") if self.key in ("mill", "lathe") else ("early", "late")


_KINDS = (
    _Kind("mill", "CNC mill", "milling", ("milling", "drilling"), ("milling-5axis",)),
    _Kind("lathe", "CNC lathe", "turning", ("turning",), ("live-tooling",)),
    _Kind("weld", "Welding cell", "welding", ("welding-mig",), ("welding-tig",)),
    _Kind("paint", "Paint booth", "painting", ("painting-powder",), ("painting-wet",)),
    _Kind("assembly", "Assembly station", "assembly", ("assembly",), ("assembly-heavy",)),
    _Kind("test", "Test bench", "testing", ("testing-dimensional",),
          ("testing-pressure", "testing-electrical")),
)  # fmt: skip
_KIND = {kind.key: kind for kind in _KINDS}
_SKILL_FOR = {c: kind.skill for kind in _KINDS for c in (*kind.capabilities, *kind.options)}
_SHIFT_TIMES = {
    "early": (time(6), time(14)),
    "late": (time(14), time(22)),
    "night": (time(22), time(6)),
}


@dataclass(frozen=True, slots=True)
class _Step:
    capability: str
    minutes: tuple[int, int]
    levels: tuple[int, int]
    instructions: str


_STEPS = {
    "Rough-mill": _Step("milling", (60, 180), (1, 2), "Fixture F-{f}; leave 0.5 mm stock."),
    "Finish-mill": _Step("milling-5axis", (90, 240), (3, 4), "Program {p}; first-off on the CMM."),
    "Drill and tap": _Step("drilling", (30, 90), (1, 2), "Thread gauges M8/M10 at the station."),
    "Rough-turn": _Step("turning", (45, 150), (1, 2), "Bar stock 42CrMo4; chuck jaws set {f}."),
    "Finish-turn": _Step("turning", (60, 180), (2, 3), "Bearing seats h6; measure every 5th part."),
    "Turn-mill keyway": _Step("live-tooling", (45, 120), (3, 3), "DIN 6885 keyway; program {p}."),
    "Tack-weld": _Step("welding-mig", (30, 90), (1, 2), "Jig W-{f}; check diagonals first."),
    "Weld seams": _Step("welding-mig", (90, 240), (2, 3), "WPS-{p}; visual check ISO 5817 C."),
    "TIG-weld stainless": _Step(
        "welding-tig", (60, 180), (3, 4), "1.4404, argon backing; WPS-{p}."
    ),
    "Powder-coat": _Step("painting-powder", (60, 150), (1, 2), "RAL 5015, 80 um; cure 20 min."),
    "Wet-paint": _Step("painting-wet", (60, 120), (1, 2), "Two coats RAL 7035; mask the bores."),
    "Pre-assemble": _Step("assembly", (60, 180), (1, 2), "Kit K-{f}; torque list {p}."),
    "Final assembly": _Step("assembly-heavy", (120, 300), (2, 4), "Crane lift; torque list {p}."),
    "Dimensional check": _Step("testing-dimensional", (30, 60), (1, 2), "Inspection plan IP-{p}."),
    "Pressure test": _Step("testing-pressure", (30, 90), (2, 3), "1.5x nominal for 10 min."),
    "Electrical test": _Step("testing-electrical", (30, 120), (2, 3), "Checklist EL-{p}."),
}

# name -> routing; feeders (sub-assemblies made as jobs of their own) are listed separately.
_PRODUCTS = {
    "Pump shaft PS-": ("Rough-turn", "Finish-turn", "Turn-mill keyway", "Dimensional check"),
    "Valve block VB-": (
        "Rough-mill", "Drill and tap", "Finish-mill", "Dimensional check", "Pressure test",
    ),
    "Machine frame MF-": (
        "Tack-weld", "Weld seams", "Rough-mill", "Dimensional check", "Powder-coat",
    ),
    "Manifold MS-": ("Rough-turn", "Drill and tap", "TIG-weld stainless", "Pressure test"),
    "Base frame BF-": (
        "Tack-weld", "Weld seams", "Dimensional check", "Rough-mill", "Finish-mill",
        "Drill and tap", "Powder-coat", "Dimensional check",
    ),
    "Control cabinet CC-": ("Tack-weld", "Powder-coat", "Pre-assemble", "Electrical test"),
    "Gearbox GX-": ("Pre-assemble", "Final assembly", "Electrical test", "Wet-paint"),
    "Hydraulic power unit HP-": (
        "Pre-assemble", "Final assembly", "Pressure test", "Electrical test", "Powder-coat",
    ),
}  # fmt: skip
_FEEDERS = {
    "Gearbox GX-": (
        ("housing", ("Rough-mill", "Finish-mill", "Drill and tap", "Dimensional check")),
        ("gear shafts", ("Rough-turn", "Finish-turn", "Turn-mill keyway")),
    ),
    "Hydraulic power unit HP-": (
        ("tank frame", ("Tack-weld", "Weld seams", "Pressure test")),
        ("valve block", ("Rough-mill", "Drill and tap", "Pressure test")),
    ),
}
_CUSTOMERS = (
    "Kessler Hydraulik", "Nordwind Energie", "Alpen Fördertechnik", "Brandt Landmaschinen",
    "Rheinmetall Werkzeug", "Vogel Verpackung", "Hansa Marine", "Stahlbau Krüger",
    "Elbe Pumpen", "Bavaria Robotics",
)  # fmt: skip
_FIRST = (
    "Lukas", "Jonas", "Felix", "Paul", "Leon", "Finn", "Elias", "Noah", "Max", "Tim", "Jan",
    "Mehmet", "Ali", "Piotr", "Tomasz", "Dragan", "Ivan", "Marco", "Luca", "Sven", "Emma",
    "Mia", "Lena", "Hannah", "Lea", "Sophie", "Laura", "Julia", "Sara", "Nina", "Aylin",
    "Elif", "Zofia", "Katarzyna", "Ana", "Petra", "Ines", "Jana", "Clara", "Frieda",
)  # fmt: skip
_LAST = (
    "Müller", "Schmidt", "Schneider", "Fischer", "Meyer", "Wagner", "Becker", "Schulz",
    "Hoffmann", "Koch", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz",
    "Zimmermann", "Braun", "Krüger", "Hofmann", "Hartmann", "Lange", "Werner", "Krause",
    "Lehmann", "Köhler", "Yilmaz", "Kaya", "Kowalski", "Nowicki", "Petrović", "Rossi",
    "Jansen", "Berg", "Vogel", "Frank", "Kaiser", "Fuchs", "Peters", "Lorenz",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Scale:
    equipment: dict[str, int]
    operators: int
    tasks: int
    release_days: int
    plan_days: int
    maintenance: int
    disturbances: int


_SCALES: dict[DemoSize, _Scale] = {
    "small": _Scale(
        {"mill": 3, "lathe": 2, "weld": 2, "paint": 1, "assembly": 2, "test": 2},
        20, 150, 14, 3, 2, 1,
    ),
    "large": _Scale(
        {"mill": 24, "lathe": 18, "weld": 16, "paint": 8, "assembly": 20, "test": 14},
        320, 10_200, 16, 4, 10, 3,
    ),
}  # fmt: skip


def demo_plant(
    size: DemoSize, *, start: datetime, seed: int = 7, now: datetime | None = None
) -> PlantData:
    """A demo plant whose plan begins at `start` (pass today 00:00 in the plant's zone).

    With `now`, what the plan puts before it has happened (`record_history`)
    and the disturbances lie after it.
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware (today 00:00 in the plant's zone)")
    scale = _SCALES[size]
    rng = random.Random(seed)
    timezone = getattr(start.tzinfo, "key", None) or "UTC"
    equipment = _equipment(scale, rng, start)
    operators = _operators(scale, rng, start)
    jobs = _jobs(scale, rng, start)
    floor = ShopFloor.build(equipment, operators, jobs, timezone=timezone, start=start, now=now)
    plan_forward(floor, rng, until=start + timedelta(days=scale.plan_days))
    add_disturbances(floor, rng, count=scale.disturbances)
    record_history(floor)
    olga, omar = _operators_for_logins(floor, today=start)
    _rename(floor, olga, "Olga Nowak")
    _rename(floor, omar, "Omar Haddad")
    return floor.plant_data(name=f"Takt demo plant ({size})", users=_users(olga, omar))


def _equipment(scale: _Scale, rng: random.Random, start: datetime) -> list[PlantEquipment]:
    units: list[PlantEquipment] = []
    for key, count in scale.equipment.items():
        kind = _KIND[key]
        for index in range(count):
            choice = index % (len(kind.options) + 1)
            extra = (kind.options[choice],) if choice < len(kind.options) else ()
            units.append(
                PlantEquipment(
                    key=f"{key}-{index + 1:02d}",
                    name=f"{kind.type} {index + 1:02d}",
                    type=kind.type,
                    capabilities=kind.capabilities + extra,
                )
            )
    for unit_index in rng.sample(range(len(units)), scale.maintenance):
        unit = units[unit_index]
        day = start + timedelta(days=rng.randint(1, 6))
        begin = day + timedelta(hours=rng.choice((6, 14)))
        window = DowntimeWindow(
            _utc(begin), _utc(begin + timedelta(hours=8)), "Planned maintenance"
        )
        units[unit_index] = PlantEquipment(
            unit.key, unit.name, unit.type, unit.capabilities, downtime=(window,)
        )
    return units


def _operators(scale: _Scale, rng: random.Random, start: datetime) -> list[PlantOperator]:
    # Primary trades in proportion to the machines that need them.
    trades = [key for key, count in scale.equipment.items() for _ in range(count)]
    names = rng.sample(range(len(_FIRST) * len(_LAST)), scale.operators)
    seen: dict[str, int] = {}
    operators: list[PlantOperator] = []
    for index, name_index in enumerate(names):
        kind = _KIND[trades[index % len(trades)]]
        rank = seen[kind.key] = seen.get(kind.key, -1) + 1
        first, last = _FIRST[name_index // len(_LAST)], _LAST[name_index % len(_LAST)]
        shift = kind.shifts[rank % len(kind.shifts)]
        operators.append(
            PlantOperator(
                key=f"op-{index + 1:03d}",
                name=f"{first} {last}",
                skills=_skills(kind, rank, rng),
                weekly_shifts=_weekly(shift, saturday=rng.random() < 0.2),
                exceptions=_exceptions(shift, rng, start),
                contact=_contact(first, last, rng),
            )
        )
    return operators


def _skills(kind: _Kind, rank: int, rng: random.Random) -> dict[str, int]:
    # The first of each trade is an expert, so every step has someone able to do it.
    skills = {kind.skill: 5 if rank == 0 else rng.choice((2, 3, 3, 4, 4, 5))}
    others = [k.skill for k in _KINDS if k.skill != kind.skill]
    for skill in rng.sample(others, rng.choice((0, 1, 1, 2, 3))):
        skills[skill] = rng.randint(1, 3)
    return skills


def _weekly(shift: str, *, saturday: bool) -> tuple[WeeklyShift, ...]:
    begin, end = _SHIFT_TIMES[shift]
    days = [*range(5), 5] if saturday and shift == "early" else range(5)
    return tuple(WeeklyShift(weekday=day, start=begin, end=end) for day in days)


def _exceptions(shift: str, rng: random.Random, start: datetime) -> tuple[CalendarException, ...]:
    found: list[CalendarException] = []
    if start.weekday() >= 5 and shift == "early":
        # Weekend overtime, so the board has work today whatever the day.
        begin = start + timedelta(hours=6)
        end = begin + timedelta(hours=8)
        found.append(CalendarException(_utc(begin), _utc(end), "extra_shift", "Weekend overtime"))
    if rng.random() < 0.08:
        first = start + timedelta(days=rng.randint(1, 14))
        back = first + timedelta(days=rng.randint(2, 5))
        found.append(CalendarException(_utc(first), _utc(back), "time_off", "Vacation"))
    return tuple(found)


_ASCII = str.maketrans({"ü": "ue", "ö": "oe", "ć": "c"})


def _contact(first: str, last: str, rng: random.Random) -> dict[str, str]:
    return {"email": _email(first, last), "phone": f"+49 151 {rng.randint(1000000, 9999999)}"}


def _email(first: str, last: str) -> str:
    return f"{first}.{last}".lower().translate(_ASCII) + "@werk-demo.example"


def _jobs(scale: _Scale, rng: random.Random, start: datetime) -> list[PlantJob]:
    """Customer orders until the plant has enough tasks; assemblies after their feeders."""
    jobs: list[PlantJob] = []
    tasks = 0
    while tasks < scale.tasks:
        product = rng.choice(list(_PRODUCTS))
        name = f"{product}{rng.choice((100, 200, 400))}"
        order = _Order(f"SO-{24100 + len(jobs)}", rng.choice(_CUSTOMERS))
        released = start + _release_offset(rng, scale)
        feeders: list[PlantJob] = []
        for part, routing in _FEEDERS.get(product, ()):
            feeders.append(_job(jobs, f"{name} {part}", routing, order, released, rng))
            jobs.append(feeders[-1])
        feeds = tuple(feeder.tasks[-1].key for feeder in feeders)
        main = _job(
            jobs, name, _PRODUCTS[product], order, released, rng, feeds=feeds, slack=len(feeders)
        )
        jobs.append(main)
        tasks += len(main.tasks) + sum(len(feeder.tasks) for feeder in feeders)
    return jobs


class _Order(NamedTuple):
    reference: str
    customer: str


def _release_offset(rng: random.Random, scale: _Scale) -> timedelta:
    if rng.random() < 0.35:
        return timedelta(days=-rng.randint(1, 4), hours=6)
    return timedelta(days=rng.randint(0, scale.release_days), hours=6)


def _job(
    jobs: Sequence[PlantJob],
    name: str,
    routing: Sequence[str],
    order: _Order,
    released: datetime,
    rng: random.Random,
    *,
    feeds: tuple[str, ...] = (),
    slack: int = 0,
) -> PlantJob:
    key = f"job-{len(jobs) + 1:04d}"
    steps = list(routing)
    if len(steps) > 3 and rng.random() < 0.3:
        del steps[rng.randrange(1, len(steps) - 1)]
    tasks: list[PlantTask] = []
    for index, step_name in enumerate(steps):
        step = _STEPS[step_name]
        number = (index + 1) * 10
        tasks.append(
            PlantTask(
                key=f"{key}/{number}",
                name=f"Op {number} {step_name}",
                duration_minutes=rng.randrange(step.minutes[0], step.minutes[1] + 1, 15),
                required_skill=_SKILL_FOR[step.capability],
                min_level=rng.randint(*step.levels),
                required_capability=step.capability,
                predecessors=(tasks[-1].key,) if tasks else feeds,
                instructions=step.instructions.format(
                    f=rng.randint(10, 99), p=rng.randint(1000, 9999)
                ),
            )
        )
    due_days = 3 + len(tasks) // 2 + 3 * slack + rng.randint(1, 7)
    due = (released + timedelta(days=due_days)).replace(hour=14)
    return PlantJob(
        key=key,
        name=name,
        tasks=tuple(tasks),
        customer=order.customer,
        reference=order.reference,
        priority=rng.choices((1, 2, 3), weights=(70, 22, 8))[0],
        release=_utc(released),
        due=_utc(due),
    )


def _operators_for_logins(floor: ShopFloor, *, today: datetime) -> tuple[str, str]:
    """Two operators for the demo logins: the first has the most work today."""
    work_today: Counter[str] = Counter()
    work: Counter[str] = Counter()
    for assignment in floor.assignments.values():
        work[assignment.operator_key] += 1
        if assignment.start.astimezone(today.tzinfo).date() == today.date():
            work_today[assignment.operator_key] += 1
    ranked = sorted(floor.operators, key=lambda k: (-work_today[k], -work[k], k))
    return ranked[0], ranked[1]


def _rename(floor: ShopFloor, operator_key: str, name: str) -> None:
    operator = floor.operators[operator_key]
    first, last = name.split()
    contact = {**operator.contact, "email": _email(first, last)}
    floor.operators[operator_key] = replace(operator, name=name, contact=contact)


def _users(olga: str, omar: str) -> tuple[PlantUser, ...]:
    return (
        PlantUser("anna", DEMO_PASSWORD, "scheduler", "Anna Weber"),
        PlantUser("ben", DEMO_PASSWORD, "scheduler", "Ben Hoffmann"),
        PlantUser("olga", DEMO_PASSWORD, "operator", "Olga Nowak", operator_key=olga),
        PlantUser("omar", DEMO_PASSWORD, "operator", "Omar Haddad", operator_key=omar),
        PlantUser("maria", DEMO_PASSWORD, "manager", "Maria Schneider"),
        PlantUser("admin", DEMO_PASSWORD, "admin", "Administrator"),
    )


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)
