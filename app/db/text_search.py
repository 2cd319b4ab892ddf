"""Finding rows by what a person types: a case-insensitive "contains" that takes
`%`, `_` and `\\` literally (a reference like "J_104" finds itself, not J-104)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, func
from sqlalchemy.orm import QueryableAttribute


def contains(
    column: ColumnElement[str] | QueryableAttribute[str], text: str
) -> ColumnElement[bool]:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return func.lower(column).like(f"%{escaped}%", escape="\\")
