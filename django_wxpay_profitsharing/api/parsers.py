"""The API's one way in for a body: strict JSON.

Why strict: a money request must mean exactly one thing. DRF's stock parser lets
the last of two ``"amount"`` keys win (amount 1 then 100000 is 100000), reads
``NaN``, and lets a deeply nested document escape as a ``RecursionError`` (a 500).
Forms and multipart bodies are not parsed at all, so a form a foreign page submits
with cached Basic credentials is a 415, never a return.

Why UTF-8 only: JSON exchanged between systems "MUST be encoded using UTF-8" (RFC 8259
§8.1, https://www.rfc-editor.org/rfc/rfc8259#section-8.1). ``json.loads`` on bytes
guesses UTF-16 and UTF-32 from the first bytes, so a proxy or firewall reading the body
as UTF-8 would see another request than the one the API acts on. A body declared with
another ``charset`` is a 415; a UTF-16 or UTF-32 body (a byte order mark, or the NUL
bytes those encodings put beside ASCII, which UTF-8 JSON can never hold), a UTF-8
byte order mark (RFC 8259: "MUST NOT add"), or bytes that are not UTF-8 are a 400.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Mapping
from typing import Any

from django.utils.http import parse_header_parameters
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
NOT_UTF8_CHARSET = _(
    "JSON must be UTF-8 (RFC 8259 §8.1), not charset %(charset)s: send UTF-8 and declare "
    "Content-Type: application/json."
)
WIDE_ENCODING = _("JSON parse error - the body is %(encoding)s; JSON must be UTF-8 (RFC 8259 §8.1)")
BYTE_ORDER_MARK = _("JSON parse error - a UTF-8 byte order mark; send the JSON text without it")
NOT_UTF8 = _("JSON parse error - the body is not UTF-8 (RFC 8259 §8.1)")
UTF8_NAMES = ("utf-8", "utf8")
#: Byte order marks, longest first (UTF-32 LE's begins with UTF-16 LE's).
WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


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


def utf8_text(data: bytes) -> str:
    """The body as text, if it is UTF-8; else a ParseError naming what it is."""
    for mark, encoding in WIDE_BOMS:
        if data.startswith(mark):
            raise ParseError(WIDE_ENCODING % {"encoding": encoding})
    if data.startswith(codecs.BOM_UTF8):
        raise ParseError(BYTE_ORDER_MARK)
    if b"\x00" in data:
        # UTF-8 JSON holds no NUL byte (a control character must be escaped in a
        # string); UTF-16 and UTF-32 put one beside every ASCII character.
        # JSON text begins with an ASCII character: UTF-32 writes it with three NULs.
        wide = "UTF-32" if data[:4].count(0) >= 3 else "UTF-16"
        raise ParseError(WIDE_ENCODING % {"encoding": wide})
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError(NOT_UTF8) from None


def loads_strict(text: str | bytes) -> Any:
    """``json.loads`` that refuses duplicate keys and non-numbers; errors are ParseError.

    Bytes must be UTF-8 (:func:`utf8_text`): ``json.loads`` would guess UTF-16 or -32.
    """
    if isinstance(text, bytes | bytearray):
        text = utf8_text(bytes(text))
    try:
        return json.loads(
            text, object_pairs_hook=_refuse_duplicates, parse_constant=_refuse_constant
        )
    except RecursionError:
        raise ParseError(TOO_DEEP) from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, int digit limit
        raise ParseError(BAD_JSON % {"problem": exc}) from None


class StrictJSONParser(JSONParser):
    """application/json in UTF-8 only; duplicate keys, NaN and deep nesting are 400s.

    A subclass of DRF's parser so that DRF reads the body through ``request.body``
    (bounded by ``DATA_UPLOAD_MAX_MEMORY_SIZE``) rather than the raw stream.
    """

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        refuse_other_charsets(media_type)
        return loads_strict(stream.read())


def refuse_other_charsets(media_type: str | None) -> None:
    """A ``charset`` parameter other than UTF-8 is a 415 naming it."""
    if not media_type:
        return
    _, params = parse_header_parameters(media_type)
    charset = params.get("charset")
    if charset is not None and charset.strip().lower() not in UTF8_NAMES:
        raise UnsupportedMediaType(
            media_type, detail=NOT_UTF8_CHARSET % {"charset": charset.strip()[:40]}
        )


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
