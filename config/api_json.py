"""The API's JSON parser and renderer: hostile bodies are 400s, every answer is JSON.

- Nesting deep enough to exhaust Python's recursion (`[[[[…`) is a parse error, not a 500.
- An integer literal longer than any valid input here (ids, values ≤ 1e38) is read as a
  float, i.e. `inf` beyond float range, which every numeric field already refuses with a
  400 naming itself (before, `float(10**400)` raised OverflowError deep in a service).
- A lone surrogate (`"\\ud800"`) echoed back in an error message cannot be encoded as
  UTF-8: the renderer then falls back to ASCII escapes instead of failing.
"""

from __future__ import annotations

import codecs
from typing import Any

from rest_framework import parsers, renderers
from rest_framework.exceptions import ParseError
from rest_framework.utils import json

# 10**38 has 39 digits; a sign and a few spare digits on top.
_MAX_INT_DIGITS = 42


def _parse_int(text: str) -> int | float:
    return int(text) if len(text) <= _MAX_INT_DIGITS else float(text)


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict[str, Any] | None = None) -> Any:
        encoding = parsers.get_encoding(parser_context or {})
        try:
            decoded = codecs.getreader(encoding)(stream)
            return json.load(
                decoded, parse_constant=json.strict_constant if self.strict else None, parse_int=_parse_int
            )
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply") from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None


class JSONRenderer(renderers.JSONRenderer):
    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: dict[str, Any] | None = None) -> bytes:
        try:
            return super().render(data, accepted_media_type, renderer_context)
        except UnicodeEncodeError:
            self.ensure_ascii = True  # this instance serves this one response
            return super().render(data, accepted_media_type, renderer_context)
