"""How the status commands name their one row: a merchant's number, or ``--pk N``, never a guess.

Why two spellings and never a guess: a shop's number (out_return_no, out_refund_no)
may be all digits (its order number), so "2" is always a number here and a row id is
only ever given as ``--pk 2``. Giving both, or neither, is refused; a number that rows
of several merchants carry asks for ``--pk``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from django.core.management.base import CommandError, CommandParser
from django.db.models import Model, QuerySet

from ..fields import MAX_PK
from ..wechatpay import errors, validation

M = TypeVar("M", bound=Model)


def add_row_arguments(parser: CommandParser, field: str, what: str) -> None:
    """The number (named ``field``), ``--pk`` and ``--no-refresh``."""
    parser.add_argument(field, nargs="?", help=f"The {what}'s {field} (even if all digits).")
    parser.add_argument("--pk", help=f"The {what}'s row id instead of its {field}.")
    parser.add_argument(
        "--no-refresh", action="store_true", help="Only show what the database holds."
    )


def named_row(
    options: dict[str, Any],
    field: str,
    what: str,
    model: type[M],
    candidates: Callable[[str], Iterable[QuerySet[M]]],
) -> M:
    """The one row ``options`` name, or a ``CommandError`` that says why not.

    ``candidates(number)``: the querysets to look in for a valid number, in turn (the
    default merchant's first); the first that has rows answers.
    """
    number, pk = options[field], options["pk"]
    if (number is None) == (pk is None):
        raise CommandError(f"Give either an {field.upper()} or --pk N, not both or neither.")
    if pk is not None:
        return _by_pk(model, str(pk), what)
    number = str(number).strip()
    try:
        validation.validate_out_no(number, field)
    except errors.InvalidRequest as exc:
        raise CommandError(f"Not a valid {field} {number!r}: {exc.message}.") from None
    found: list[M] = []
    for rows in candidates(number):
        found = list(rows.order_by("pk")[:10])
        if found:
            break
    if not found:
        raise CommandError(f"No {what} with {field} {number!r}.")
    if len(found) > 1:  # other merchants' numbers: which one is meant is not known
        pks = ", ".join(str(row.pk) for row in found)
        raise CommandError(
            f"{field} {number!r} belongs to {what}s of several merchants (pk {pks}); give --pk."
        )
    return found[0]


def _by_pk(model: type[M], text: str, what: str) -> M:
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_PK:
        raise CommandError(f"--pk must be a row id (a positive integer), not {text!r}.")
    row: M | None = model._default_manager.filter(pk=int(text)).first()
    if row is None:
        raise CommandError(f"No {what} with pk {text}.")
    return row
