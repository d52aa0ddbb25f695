"""Keyset pagination whose cursor, if tampered with, is a 400 naming ``cursor``.

DRF answers 404 for a cursor it cannot decode, and passes a decodable one's
position straight to the database: a position that is not a date-time is a
Django ``ValidationError`` there (a 500), one before year 1 in UTC an
``OverflowError``. A cursor is a query parameter like any other, so a bad one is
the caller's mistake, told as such (400), and never reaches the database.
"""

from __future__ import annotations

from typing import Any, cast

from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request

from ..conf import wxpay_settings
from .filters import parse_moment

INVALID_CURSOR = _("invalid cursor: pass a page's next or previous link unchanged")


class ReturnCursorPagination(CursorPagination):
    """Flat cost per page at any depth, no COUNT(*)."""

    ordering = ("-created", "-id")
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request: Request) -> int | None:
        self.page_size = wxpay_settings.API_PAGE_SIZE
        return super().get_page_size(request)

    def decode_cursor(self, request: Request) -> Cursor | None:
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise ValidationError({self.cursor_query_param: [INVALID_CURSOR]}) from None
        if cursor is None or cursor.position is None:
            return cursor
        try:
            moment = parse_moment(str(cursor.position), self.cursor_query_param)
        except ValidationError:
            raise ValidationError({self.cursor_query_param: [INVALID_CURSOR]}) from None
        # str(): the very form DRF wrote (it compares positions as text; the stubs
        # say int, but a position is the text of the first ordering field's value)
        position = cast(Any, str(moment))
        return Cursor(offset=cursor.offset, reverse=cursor.reverse, position=position)
