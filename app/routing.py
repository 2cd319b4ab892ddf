"""Path parameters routes share: `{name:id}` is a database id, `{name:run}` a background run's.

An id in a path is 1 to 18 digits (`app.domain.bounds.MAX_ID`); a longer
number matches no route, so it answers 404 like any id that does not exist,
and no handler ever sees a number its database column cannot hold. A run id
is 32 hexadecimal digits. `app/__init__.py` imports this module, so the
convertors exist before any route declares them.
"""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor

from app.domain.bounds import MAX_ID

ID_DIGITS = len(str(MAX_ID))
RUN_ID_PATTERN = "[0-9a-f]{32}"


class IdConvertor(Convertor[int]):
    regex = f"[0-9]{{1,{ID_DIGITS}}}"

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        if not 0 <= value <= MAX_ID:
            raise ValueError(f"{value} is no id")
        return str(value)


class RunIdConvertor(Convertor[str]):
    regex = RUN_ID_PATTERN

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("id", IdConvertor())
register_url_convertor("run", RunIdConvertor())
