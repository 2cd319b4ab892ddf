"""axe-core in the page: the accessibility rules a real browser can check.

axe-core is a test-only npm package pinned in tests/js/package-lock.json
(`scripts/test-needs` installs it with `npm ci`); it is injected into the page
under test, never served by Takt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from needs import unavailable
from playwright.async_api import Page

AXE = Path(__file__).resolve().parents[1] / "js" / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice", "experimental"]
GRAVE = ("serious", "critical")


async def grave_violations(page: Page) -> list[dict[str, Any]]:
    """axe's serious and critical violations on the page as it is now, each with its nodes."""
    if not AXE.exists():
        unavailable("axe-core is not installed (scripts/test-needs installs it with npm ci)")
    await page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = await page.evaluate(
        """async (tags) => {
            const result = await axe.run(document, { runOnly: { type: "tag", values: tags } });
            return result.violations.map((v) => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map(
                    (n) => n.target.join(" ") + " :: " + n.failureSummary),
                count: v.nodes.length,
            }));
        }""",
        TAGS,
    )
    return [v for v in found if v["impact"] in GRAVE]


def described(violations: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{v['impact']} {v['id']} ({v['count']}): {v['help']}\n  " + "\n  ".join(v["nodes"])
        for v in violations
    )
