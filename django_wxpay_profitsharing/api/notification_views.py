"""``POST notifications/``: where WeChat Pay sends its notifications (``NOTIFY_URL``).

A plain Django view, not DRF's: the signature covers the raw body bytes, so they are
read as they came and never parsed into data and serialised again; no authentication
and no CSRF token (WeChat Pay has neither: trust comes from the signature alone);
never behind ``LoginRequiredMiddleware``; and not atomic, so that the record of a
refused notification stays while nothing else changes (the desk writes in its own
short transactions and hands the job's look off after commit).

What it answers, as WeChat Pay's notification guide asks
(https://pay.weixin.qq.com/doc/v3/merchant/4012082053): 204 without a body for a
notification taken (a duplicate, or a refund no job made, too: sending them again
would change nothing); a refusal is a 4xx with ``{"code": "FAIL", "message": ...}``,
WeChat Pay's ``WECHATPAY/SIGNTEST/`` probe included; a body over
``desk.MAX_BODY_BYTES`` is refused by its ``Content-Length`` before it is read.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .. import desk
from ..error_reports import hide_secrets_in_error_reports
from ..wechatpay.notifications import Step

#: The answer to a refusal, by the check that refused it: 401 when the sender is not
#: trusted, 400 when a trusted sender's message cannot be used, 413 for the size.
STATUS_BY_STEP: dict[Step, int] = {
    Step.SIZE: 413,
    Step.HEADERS: 400,
    Step.TIMESTAMP: 401,
    Step.KEY: 401,
    Step.SIGNATURE: 401,
    Step.NONCE: 401,
    Step.BODY: 400,
    Step.DECRYPT: 400,
    Step.RESOURCE: 400,
    Step.MERCHANT: 400,
}
#: Verdicts answered 204: WeChat Pay stops sending them.
TAKEN = frozenset(
    {desk.Verdict.ACCEPTED, desk.Verdict.DUPLICATE, desk.Verdict.ORPHAN,
     desk.Verdict.NOTHING_TO_DO}
)  # fmt: skip


def _declared_length(request: HttpRequest) -> int | None:
    """The ``Content-Length`` the sender declared, if it is a number."""
    text = request.META.get("CONTENT_LENGTH") or ""
    return int(text) if text.isascii() and text.isdigit() else None


def _fail(message: str, status: int) -> JsonResponse:
    return JsonResponse({"code": "FAIL", "message": message}, status=status,
                        json_dumps_params={"ensure_ascii": False})  # fmt: skip


@csrf_exempt
@login_not_required
@transaction.non_atomic_requests
@require_POST
def notifications(request: HttpRequest) -> HttpResponse:
    """Judge, record and answer one notification; the refund's job looks after the answer."""
    hide_secrets_in_error_reports(request)
    cap = desk.MAX_BODY_BYTES
    declared = _declared_length(request)
    body = None if declared is not None and declared > cap else request.read(cap + 1)
    received = desk.receive_notification(request.headers, body)
    if received.verdict in TAKEN:
        return HttpResponse(status=204)
    if received.step is None:  # this site cannot read notifications: WeChat Pay retries
        return _fail(received.message, 500)
    return _fail(received.message, STATUS_BY_STEP[received.step])
