"""The plant data page, server side: preview, row errors, bad uploads, the import, exports."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from board_plant import BoardWorld, board_world, log_in
from sqlalchemy import func, select

from app.db import tables as t
from app.domain.plants.layout import COLUMNS

EQUIPMENT = "name,type,capabilities,status,downtime\nPress 1,Press,pressing,available,\n"
OPERATORS = "name,skills,shifts,time_off,extra_shifts\nPia Press,pressing:3,Mon 06:00-14:00,,\n"
JOBS = ",".join(COLUMNS["jobs"]) + (
    "\nSO-900,Bracket,ACME,SO-900,2,,,10,Press,45,pressing,2,pressing,,Press 1: 40,"
    "\nSO-900,,,,,,,20,Check,15,,1,,10,,"
)


@pytest.fixture
async def world(database_url: str, tmp_path: Path) -> AsyncIterator[BoardWorld]:
    async with board_world(database_url, tmp_path) as world:
        yield world


@pytest.fixture
async def maria(world: BoardWorld) -> dict[str, str]:
    csrf = await log_in(world.client, "maria", "/plant/data")
    return {"X-CSRF-Token": csrf, "HX-Request": "true"}


def upload(*files: tuple[str, str | bytes]) -> list[tuple[str, tuple[str, bytes]]]:
    return [
        ("file", (name, body.encode() if isinstance(body, str) else body)) for name, body in files
    ]


async def plant_rows(world: BoardWorld) -> tuple[int, int, int]:
    async with world.services.db.read() as session:
        return (
            int(await session.scalar(select(func.count()).select_from(t.Task)) or 0),
            int(await session.scalar(select(func.count()).select_from(t.Equipment)) or 0),
            int(await session.scalar(select(func.max(t.Schedule.revision))) or 0),
        )


async def test_managers_get_the_page_and_the_link_schedulers_do_not(world: BoardWorld) -> None:
    await log_in(world.client, "maria", "/plant/data")
    page = await world.client.get("/plant/data")
    assert page.status_code == 200 and "Check the files" in page.text
    assert 'href="/plant/data" aria-current="page">Data</a>' in page.text
    board = await world.client.get("/board")
    assert 'href="/plant/data">Data</a>' in board.text

    anna = world.another_browser()
    await log_in(anna, "anna")
    assert (await anna.get("/plant/data")).status_code == 403
    assert 'href="/plant/data"' not in (await anna.get("/board")).text


async def test_row_errors_are_listed_and_nothing_is_written(
    world: BoardWorld, maria: dict[str, str]
) -> None:
    before = await plant_rows(world)
    bad_jobs = JOBS.replace("Press 1: 40", "Press 7: 40").replace(",10,,", ",99,,")
    response = await world.client.post(
        "/plant/data/preview",
        files=upload(
            ("equipment.csv", EQUIPMENT), ("operators.csv", OPERATORS), ("jobs.csv", bad_jobs)
        ),
        headers=maria,
    )
    assert response.status_code == 422
    assert "2 problems: nothing was imported" in response.text
    rows = re.findall(
        r"<tr><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td>", response.text
    )
    no_sheet = "\u2013"  # a CSV file has none
    assert rows == [
        ("jobs.csv", no_sheet, "2", "routings"),
        ("jobs.csv", no_sheet, "3", "predecessors"),
    ]
    assert 'name="upload"' not in response.text
    assert await plant_rows(world) == before


@pytest.mark.parametrize(
    ("files", "status", "says"),
    [
        (upload(("jobs.csv", b"")), 422, "the file is empty"),
        (upload(("photo.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")), 422, "not a CSV file"),
        (upload(("plant.xlsx", b"PK\x03\x04 not a workbook")), 422, "not an Excel workbook"),
        ([], 422, "choose a file"),
    ],
    ids=["empty", "not a spreadsheet", "broken workbook", "no file"],
)
async def test_bad_uploads_get_a_4xx_in_the_error_shape_and_write_nothing(
    world: BoardWorld,
    maria: dict[str, str],
    files: list[tuple[str, tuple[str, bytes]]],
    status: int,
    says: str,
) -> None:
    before = await plant_rows(world)
    headers = {"X-CSRF-Token": maria["X-CSRF-Token"], "Accept": "application/json"}
    response = await world.client.post(
        "/plant/data/preview", files=files or None, data={"kind": ""}, headers=headers
    )
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert says in error["message"] + str(error["details"])
    page = await world.client.post(
        "/plant/data/preview", files=files or None, data={"kind": ""}, headers=maria
    )
    assert page.status_code == status and says in page.text
    assert await plant_rows(world) == before


async def test_a_file_too_large_is_refused_before_it_is_read(
    world: BoardWorld, maria: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.web import plant_data

    monkeypatch.setattr(plant_data, "MAX_REQUEST_BYTES", 1000)
    headers = {"X-CSRF-Token": maria["X-CSRF-Token"], "Accept": "application/json"}
    response = await world.client.post(
        "/plant/data/preview", files=upload(("jobs.csv", "x" * 5000)), headers=headers
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


async def test_preview_then_import_runs_on_the_queue_to_the_end(
    world: BoardWorld, maria: dict[str, str]
) -> None:
    before = await plant_rows(world)
    preview = await world.client.post(
        "/plant/data/preview",
        files=upload(
            ("equipment.csv", EQUIPMENT), ("operators.csv", OPERATORS), ("jobs.csv", JOBS)
        ),
        headers=maria,
    )
    assert preview.status_code == 200, preview.text
    assert "Import 2 tasks, 1 equipment, 1 operators" in preview.text
    token = re.search(r'name="upload" value="([^"]+)"', preview.text)
    assert token is not None
    assert await plant_rows(world) == before  # a preview writes nothing

    queue = world.services.queue
    assert queue is not None
    await queue.start()
    try:
        started = await world.client.post(
            "/plant/data/import", data={"upload": token[1], "kind": ""}, headers=maria
        )
        assert started.status_code == 202, started.text
        assert 'hx-trigger="every 1s"' in started.text and "<progress" in started.text
        run = re.search(r'hx-get="/plant/data/runs/([^"]+)"', started.text)
        assert run is not None
        for _ in range(200):
            state = await world.client.get(f"/plant/data/runs/{run[1]}", headers=maria)
            if "Imported" in state.text:
                break
            await asyncio.sleep(0.05)
    finally:
        await queue.stop()
    assert "1 equipment, 1 operators, 1 jobs and 2 tasks are in the plant" in state.text
    assert "every 1s" not in state.text  # the polling stops
    tasks, equipment, revision = await plant_rows(world)
    assert (tasks, equipment, revision) == (before[0] + 2, before[1] + 1, before[2] + 1)

    again = await world.client.post(
        "/plant/data/import", data={"upload": token[1], "kind": ""}, headers=maria
    )
    assert again.status_code == 422 and "upload is gone" in again.text


async def test_someone_elses_upload_cannot_be_imported(
    world: BoardWorld, maria: dict[str, str]
) -> None:
    admin = world.another_browser()
    csrf = await log_in(admin, "admin", "/plant/data")
    preview = await admin.post(
        "/plant/data/preview",
        files=upload(("equipment.csv", EQUIPMENT)),
        headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
    )
    token = re.search(r'name="upload" value="([^"]+)"', preview.text)
    assert token is not None
    taken = await world.client.post("/plant/data/import", data={"upload": token[1]}, headers=maria)
    assert taken.status_code == 422 and "upload is gone" in taken.text


async def test_exports_download_in_the_import_layout(
    world: BoardWorld, maria: dict[str, str]
) -> None:
    for name, header in [
        ("equipment.csv", ",".join(COLUMNS["equipment"])),
        ("operators.csv", ",".join(COLUMNS["operators"])),
        ("jobs.csv", ",".join(COLUMNS["jobs"])),
        ("plan.csv", "Task #,Order reference"),
    ]:
        response = await world.client.get(f"/plant/data/export/{name}")
        assert response.status_code == 200, name
        assert response.text.lstrip("\ufeff").startswith(header), name
        assert "attachment" in response.headers["content-disposition"]
    book = await world.client.get("/plant/data/export/plant.xlsx")
    assert book.status_code == 200 and book.content[:2] == b"PK"
    assert (await world.client.get("/plant/data/export/secrets.txt")).status_code == 404


async def test_without_scripts_the_forms_post_and_get_the_whole_page(
    world: BoardWorld, maria: dict[str, str]
) -> None:
    preview = await world.client.post(
        "/plant/data/preview",
        files=upload(("equipment.csv", EQUIPMENT)),
        data={"csrf_token": maria["X-CSRF-Token"], "kind": ""},
    )
    assert preview.status_code == 200, preview.text
    assert "<html" in preview.text and "Ready to import" in preview.text
    no_token = await world.client.post(
        "/plant/data/preview", files=upload(("equipment.csv", EQUIPMENT)), data={"kind": ""}
    )
    assert no_token.status_code == 403
