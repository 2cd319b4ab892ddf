"""Path parameters every route shares: `{name:id}` is a database id.

An id in a path is 1 to 18 digits (`app.domain.bounds.MAX_ID`); a longer
number matches no route, so it answers 404 like any id that does not exist,
and no handler ever sees a number its database column cannot hold.
Import this module before declaring routes that use `:id`.
"""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor

from app.domain.bounds import MAX_ID

ID_DIGITS = len(str(MAX_ID))


class IdConvertor(Convertor[int]):
    regex = f"[0-9]{{1,{ID_DIGITS}}}"

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        if not 0 <= value <= MAX_ID:
            raise ValueError(f"{value} is no id")
        return str(value)


register_url_convertor("id", IdConvertor())
