"""The one place that changes a return's state.

Every transition follows the same three steps, so that no return is lost and none is
sent twice by accident:

1. **claim** (a short transaction, row locked with ``select_for_update``): check the
   transition is allowed, count the attempt, freeze the request fields
   (``submitted_at``), mark that WeChat may now know the return (``needs_query``) and
   take a lease (``lease_until``/``lease_token``) so that no other thread, process or
   worker touches the row while the call is under way. Committed *before* the HTTP
   call: there is no money movement without a record.
2. **call** WeChat Pay outside any transaction (no row lock held across the network).
   If an earlier attempt may have reached WeChat, the return is queried before it
   is posted again; a re-post is always the identical request (same out_return_no).
3. **apply** (a short transaction, row locked again): record every HTTP call, move
   the state, and schedule the signals with ``transaction.on_commit`` when the state
   became final. A final state never changes again.

The steps themselves live in ``transitions.py``; this module is their public face.

A process that dies between 1 and 3 leaves a lease that expires after
``LEASE_SECONDS``; the next attempt queries first and converges on WeChat's truth.

Outcomes:

- ``SUCCESS`` / ``FAILED`` -> ``succeeded`` / ``failed`` (final, signals);
- ``PROCESSING`` -> ``processing``, polled with ``POLL_BACKOFF``;
- a definitive refusal of the create call (``PARAM_ERROR``, ``INVALID_REQUEST``,
  ``NO_AUTH``, ``NOT_ENOUGH``, ``RESOURCE_NOT_EXISTS``) -> ``rejected`` (final);
- unknown outcome (timeout, reset, 5xx, unverifiable response, rate limit) and
  ``SIGN_ERROR`` (our credentials, not the return, were refused) -> stays as it was,
  retried after ``RETRY_BACKOFF`` with the same request.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from . import transitions
from .conf import wxpay_settings
from .executor import map_bounded
from .models import (
    ProfitSharingReturn,
    ReturnState,
)
from .validation_messages import translated
from .wechatpay import validation

REQUEST_FIELDS = ("sub_mchid", "order_id", "out_order_no", "return_mchid", "amount", "description")


#: What step 3 may change (never the request fields: they are frozen).
class ReturnConflict(ValidationError):
    """The out_return_no exists already with other request fields."""

    def __init__(self, existing: ProfitSharingReturn, differences: list[str]) -> None:
        self.existing = existing
        self.differences = differences
        super().__init__(
            {
                "out_return_no": [
                    f"{existing.out_return_no} already exists with a different "
                    f"{', '.join(differences)}; use a new out_return_no for a new return."
                ]
            },
            code="conflict",
        )


# ---------------------------------------------------------------------------- create


def validate_return_fields(
    *,
    return_mchid: Any,
    amount: Any,
    description: Any,
    out_order_no: Any = None,
    order_id: Any = None,
    sub_mchid: Any = None,
    out_return_no: Any = None,
) -> dict[str, Any]:
    """Validate as WeChat Pay does; raises ``ValidationError`` with an error per field.

    Returns the normalised fields ("" for absent optional ids, as stored).
    """
    given = dict(locals())  # the seven fields, nothing else defined yet
    # Forms and JSON send "" for an empty optional field: absent, as None is.
    optional = {"out_order_no", "order_id", "sub_mchid", "out_return_no"}
    fields = {k: None if k in optional and v == "" else v for k, v in given.items()}
    cleaned, problems = validation.check_create_fields(fields, required=given.keys() - optional)
    if problems:
        raise ValidationError(
            {field: [translated(m) for m in messages] for field, messages in problems.items()}
        )
    for name in optional:
        cleaned.setdefault(name, "")
    return cleaned


def new_out_return_no() -> str:
    """A fresh number from the configured generator and prefix."""
    return wxpay_settings.OUT_RETURN_NO_GENERATOR(wxpay_settings.OUT_RETURN_NO_PREFIX)


def create_or_get_return(
    *,
    return_mchid: Any,
    amount: Any,
    description: Any,
    out_order_no: Any = None,
    order_id: Any = None,
    sub_mchid: Any = None,
    out_return_no: Any = None,
    created_by: Any = None,
    submit: bool | None = None,
) -> tuple[ProfitSharingReturn, bool]:
    """Save a ``pending`` return (or find the identical one); returns ``(row, created)``.

    Idempotent on ``out_return_no``: the same fields again give the existing row and
    ``created=False``; other fields raise :class:`ReturnConflict`. A new row is
    submitted after the transaction commits unless ``submit`` is False (default: the
    ``SUBMIT_ON_CREATE`` setting).
    """
    fields = validate_return_fields(
        return_mchid=return_mchid,
        amount=amount,
        description=description,
        out_order_no=out_order_no,
        order_id=order_id,
        sub_mchid=sub_mchid,
        out_return_no=out_return_no,
    )
    mchid = wxpay_settings.MCHID
    number = fields.pop("out_return_no") or new_out_return_no()
    existing = ProfitSharingReturn.objects.filter(mchid=mchid, out_return_no=number).first()
    if existing is None:
        try:
            with transaction.atomic():
                row = ProfitSharingReturn.objects.create(
                    mchid=mchid,
                    out_return_no=number,
                    created_by=created_by if getattr(created_by, "pk", None) else None,
                    next_attempt_at=timezone.now(),
                    **fields,
                )
        except IntegrityError:
            existing = ProfitSharingReturn.objects.get(mchid=mchid, out_return_no=number)
        else:
            if wxpay_settings.SUBMIT_ON_CREATE if submit is None else submit:
                from .dispatch import dispatch_submit

                transaction.on_commit(lambda: dispatch_submit([row.pk]), robust=True)
            return row, True
    differences = [name for name in REQUEST_FIELDS if getattr(existing, name) != fields[name]]
    if differences:
        raise ReturnConflict(existing, differences)
    return existing, False


def update_unsent_return(ret: ProfitSharingReturn | int, **fields: Any) -> bool:
    """Change the request fields of a return never sent; False if it was sent meanwhile.

    Why a conditional UPDATE and not ``row.save()``: a worker may claim and submit
    the row between an editor loading it and saving it. A whole-row save would then
    write back the stale state and lease and unfreeze a request already sent; this
    writes the given fields only while ``submitted_at`` is still empty (a claim sets
    it before any HTTP call), and writes nothing otherwise.
    """
    unknown = set(fields) - set(REQUEST_FIELDS)  # out_return_no is the identity: never
    if unknown:
        raise ValueError(f"not request fields: {', '.join(sorted(unknown))}")
    unsent = ProfitSharingReturn.objects.filter(pk=_pk(ret), submitted_at__isnull=True)
    return bool(unsent.update(**fields, updated=timezone.now()))


def create_return(**kwargs: Any) -> ProfitSharingReturn:
    """:func:`create_or_get_return` without the ``created`` flag."""
    return create_or_get_return(**kwargs)[0]


def _pk(ret: ProfitSharingReturn | int) -> int:
    return ret.pk if isinstance(ret, ProfitSharingReturn) else int(ret)


def _run(pk: int, action: str) -> tuple[ProfitSharingReturn, bool]:
    now = timezone.now()
    with transaction.atomic():
        row = ProfitSharingReturn.objects.select_for_update().get(pk=pk)
        if not transitions.claimable(row, action, now):
            return row, False
        claim = transitions.claim_row(row, uuid.uuid4().hex, now, action)
    return transitions.apply(claim, transitions.call(claim)), True


def submit(ret: ProfitSharingReturn | int) -> ProfitSharingReturn:
    """Send a ``pending`` return to WeChat Pay (or find out what became of it).

    Does nothing (and makes no call) when the return is not pending or another
    worker holds it; returns the row as it is now.
    """
    return _run(_pk(ret), "submit")[0]


def refresh(ret: ProfitSharingReturn | int) -> ProfitSharingReturn:
    """Ask WeChat Pay for the state of a ``processing`` return (or an uncertain one)."""
    return _run(_pk(ret), "refresh")[0]


def run_many(pks: Iterable[int], action: str) -> list[tuple[ProfitSharingReturn, bool]]:
    """:func:`submit` or :func:`refresh` for many rows on the bounded pool.

    Returns ``(row, ran)`` per pk; ``ran`` is False when the row was skipped (final,
    wrong state, or held by another worker).
    """
    if action not in ("submit", "refresh"):
        raise ValueError(f"unknown action {action!r}")
    return map_bounded(lambda pk: _run(pk, action), list(pks), wxpay_settings.POOL_SIZE)


def claim_due(limit: int, due_before=None) -> list[transitions.Claim]:
    """Claim up to ``limit`` returns due by ``due_before`` in one transaction.

    On PostgreSQL the rows are locked with ``SKIP LOCKED``, so workers running this
    at the same time split the due returns between them without waiting or overlap.
    """
    from django.db import connection

    now = timezone.now()
    token = uuid.uuid4().hex
    skip_locked = connection.features.has_select_for_update_skip_locked
    with transaction.atomic():
        rows = list(
            ProfitSharingReturn.objects.due(now, due_before)
            .order_by("next_attempt_at", "pk")
            .select_for_update(skip_locked=skip_locked)[:limit]
        )
        return [transitions.claim_row(row, token, now, "due") for row in rows]


def process_due(limit: int | None = None) -> dict[str, int]:
    """Submit due ``pending`` returns and refresh due ``processing`` ones.

    Works in batches of ``PROCESS_BATCH_SIZE``; the calls of a batch run on the
    bounded pool under the process-wide rate limit. Returns counts: ``claimed`` and
    one per resulting state.
    """
    summary = {"claimed": 0, **{state.value: 0 for state in ReturnState}}
    # Only what was due when we started: a row rescheduled by this run waits its turn.
    started = timezone.now()
    batch_size = max(1, int(wxpay_settings.PROCESS_BATCH_SIZE))
    while limit is None or summary["claimed"] < limit:
        wanted = batch_size if limit is None else min(batch_size, limit - summary["claimed"])
        claims = claim_due(wanted, due_before=started)
        if not claims:
            break
        summary["claimed"] += len(claims)
        rows = map_bounded(
            lambda c: transitions.apply(c, transitions.call(c)), claims, wxpay_settings.POOL_SIZE
        )
        for row in rows:
            summary[row.state] += 1
    return summary
