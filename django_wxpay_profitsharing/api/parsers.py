"""The API's one way in for a body: strict JSON.

Why strict: a money request must mean exactly one thing. DRF's stock parser lets
the last of two ``"amount"`` keys win (amount 1 then 100000 is 100000), reads
``NaN``, and lets a deeply nested document escape as a ``RecursionError`` (a 500).
Forms and multipart bodies are not parsed at all, so a form a foreign page submits
with cached Basic credentials is a 415, never a return.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.parsers import JSONParser
from rest_framework.request import Request

JSON_MEDIA_TYPE = "application/json"
DUPLICATE_KEY = _("JSON parse error - duplicate key %(key)r")
TOO_DEEP = _("JSON parse error - nested too deeply")
NOT_A_NUMBER = _("JSON parse error - %(constant)s is not a JSON number")
BAD_JSON = _("JSON parse error - %(problem)s")
UNDECLARED_BODY = _("A write must be declared as Content-Type: application/json.")


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook``: an object that names a key twice is refused."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise ParseError(DUPLICATE_KEY % {"key": key})
        found[key] = value
    return found


def _refuse_constant(name: str) -> Any:
    """``parse_constant``: NaN, Infinity and -Infinity are not JSON."""
    raise ParseError(NOT_A_NUMBER % {"constant": name})


def loads_strict(text: str | bytes) -> Any:
    """``json.loads`` that refuses duplicate keys and non-numbers; errors are ParseError."""
    try:
        return json.loads(
            text, object_pairs_hook=_refuse_duplicates, parse_constant=_refuse_constant
        )
    except RecursionError:
        raise ParseError(TOO_DEEP) from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, int digit limit
        raise ParseError(BAD_JSON % {"problem": exc}) from None


class StrictJSONParser(JSONParser):
    """application/json only; duplicate keys, NaN and deep nesting are 400s.

    A subclass of DRF's parser so that DRF reads the body through ``request.body``
    (bounded by ``DATA_UPLOAD_MAX_MEMORY_SIZE``) rather than the raw stream.
    """

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        return loads_strict(stream.read())


def require_json_body(request: Request) -> None:
    """A write not declared as JSON is refused (415), even with no body at all.

    Why even without a body: ``submit`` needs no field to move money, and a foreign
    page can send a bodiless POST (``fetch`` with no body declares no type) or an empty
    form with the browser's cached Basic credentials. Declaring
    ``Content-Type: application/json`` is what a foreign page cannot do without the
    API's consent (CORS preflight).
    """
    if request.method != "POST":
        return  # reads; and the API has no PUT, PATCH or DELETE (405 says so)
    declared = request.content_type
    if declared and declared.split(";", 1)[0].strip().lower() == JSON_MEDIA_TYPE:
        return
    raise UnsupportedMediaType(declared or "", detail=None if declared else UNDECLARED_BODY)
