"""Every import points inward (docs/architecture.md): the layout of `app/` is the
architecture, and this test fails when an import points outward.

    web / api  →  services  →  domain          security below everything
    realtime: a library the adapters use; never web or api
    auth: identity at the edge; services never import it
"""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app"
EDGES = {"web", "api", "cli", "main"}
# Package -> the packages of `app` it must never import.
NEVER = {
    "domain": EDGES | {"db", "services", "realtime", "auth", "background", "security", "settings"},
    "security": EDGES | {"db", "services", "realtime", "auth", "background", "domain", "settings"},
    "db": EDGES | {"services", "realtime", "auth", "background"},
    "services": EDGES | {"auth"},
    "realtime": EDGES,
    "auth": EDGES | {"realtime"},
    "background": EDGES,
    "web": {"api", "cli", "main"},
    "api": {"web", "realtime", "cli", "main"},
}


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def outward_imports() -> list[str]:
    wrong = []
    for path in sorted(APP.rglob("*.py")):
        parts = path.relative_to(APP).parts
        package = parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")
        for module in sorted(imports_of(path)):
            names = module.split(".")
            if names[0] == "app" and len(names) > 1 and names[1] in NEVER.get(package, ()):
                wrong.append(f"{path.relative_to(APP.parent)} imports {module}")
    return wrong


def test_every_import_points_inward() -> None:
    assert outward_imports() == []


def test_the_check_sees_an_outward_import(tmp_path: Path) -> None:
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text("from app.web.session import page_session\nimport app.api.errors\n")
    assert imports_of(sneaky) == {"app.web.session", "app.api.errors"}
    assert {"web", "api"} <= NEVER["realtime"] and "auth" in NEVER["services"]


def test_realtime_moves_fragments_but_writes_no_html() -> None:
    """The live layer sends what the pages render (realtime/fragments.py), never its own."""
    import re

    tags = re.compile(r"<(div|li|ul|p|span|meta|section|button|a)[\s>]")
    offenders = []
    for path in sorted((APP / "realtime").rglob("*.py")):
        if "markupsafe" in imports_of(path) or tags.search(path.read_text(encoding="utf-8")):
            offenders.append(path.name)
    assert offenders == []
