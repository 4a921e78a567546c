"""The server's JSON responses."""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import JSONResponse as _StarletteJSONResponse


class JSONResponse(_StarletteJSONResponse):
    """A JSON response that can carry any string a request brought in.

    JSON may escape half of a UTF-16 pair on its own (``"\\ud800"``), and Python decodes it
    into a string UTF-8 cannot encode: echoed back (an unknown input's name in an error, a
    service's output), it made the response fail with a 500. Such a body is written with
    every non-ASCII character escaped instead, which JSON allows; any other body is written
    as before, byte for byte.
    """

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(
                content, ensure_ascii=True, allow_nan=False, separators=(",", ":")
            ).encode("ascii")
