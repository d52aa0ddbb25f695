"""WeChat Pay's notifications as the site receives them: judged, recorded, and what they mean.

One URL for every merchant (``NOTIFY_URL``, the app's ``notifications/`` route): each
POST is read by the client's :meth:`~.wechatpay.notifications.NotificationReader.read_any`
with the keys of every configured merchant, and the merchant whose keys verify and
decrypt it is the one it is for. Every POST becomes one :class:`~.models.Notification`
row, trusted or not, with why: never its signature, the APIv3 key, nor the decrypted
fields a shop need not keep (only the ids and the status are written).

What a trusted refund notice does is small on purpose: polling decides (退款结果通知,
https://pay.weixin.qq.com/doc/v3/merchant/4012082053, says WeChat Pay does not
guarantee delivery, and anyone who holds the URL can replay an old one within the
window), so a notice never writes a refund's status; it only names the job that should
look now (:attr:`Received.nudge`), which the desk hands off after the answer. A notice
already taken (the same merchant, refund number and status, verified before) is a
duplicate and changes nothing; one whose number no job made (a refund made in the
merchant platform, or by another system) is an orphan, recorded and acknowledged.
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from .clients import client_for
from .merchants import merchants
from .refund_models import Notification, Refund, RefundJob
from .refund_states import ACTIVE_JOB_STATES
from .wechatpay import errors
from .wechatpay.events import Notification as ReadNotification
from .wechatpay.notifications import (
    MAX_NOTIFICATION_BYTES,
    BodyTooLarge,
    MemoryNonceStore,
    NotificationError,
    NotificationKeys,
    NotificationReader,
    SignatureProbe,
    Step,
)
from .wechatpay.validation import CONTROL_RE

logger = logging.getLogger("django_wxpay_profitsharing")

#: The largest body read: a notification is a few kilobytes.
MAX_BODY_BYTES = MAX_NOTIFICATION_BYTES
#: Signed messages already taken, for the process's life (WeChat Pay re-signs its retries).
_NONCES = MemoryNonceStore()


class Verdict(enum.StrEnum):
    """What became of one POST."""

    #: Verified, a refund of one of the site's jobs: the job looks now.
    ACCEPTED = "accepted"
    #: Verified, and taken before: nothing changes.
    DUPLICATE = "duplicate"
    #: Verified, but no job made that refund: recorded only.
    ORPHAN = "orphan"
    #: Verified, and nothing to do (the job has ended or waits for an operator, or the
    #: notice is not a refund's).
    NOTHING_TO_DO = "nothing_to_do"
    #: WeChat Pay's ``WECHATPAY/SIGNTEST/`` probe: refused, as it asks.
    PROBE = "probe"
    #: Not trusted (forged, stale, replayed, undecryptable, malformed, too large).
    REFUSED = "refused"
    #: This site cannot read notifications at all (no merchant has an APIv3 key).
    UNREADABLE = "unreadable"


@dataclass(frozen=True)
class Received:
    """One POST judged: its record, the verdict, and the job to make look now."""

    record: Notification
    verdict: Verdict
    #: The check that refused it (``REFUSED`` and ``PROBE``).
    step: Step | None = None
    #: Why, in words safe to answer (no secret, no plaintext).
    message: str = ""
    #: The job that should look now (``ACCEPTED``).
    nudge: RefundJob | None = None


def _printable(value: object, limit: int) -> str:
    """``value`` as text fit for a column: no control characters (PostgreSQL refuses NUL)."""
    return CONTROL_RE.sub("", value if isinstance(value, str) else "")[:limit]


def _all_keys() -> dict[str, NotificationKeys]:
    """Every configured merchant that can read notifications, by mchid.

    A merchant without an APIv3 key (or whose keys do not load) cannot decrypt a
    notification, so it is left out: its notices are refused and its refunds followed
    by polling alone (system check W032 says so at deploy time).
    """
    found: dict[str, NotificationKeys] = {}
    for mchid in merchants():
        try:
            found[mchid] = client_for(mchid).notification_keys()
        except (ImproperlyConfigured, errors.WeChatPayError) as exc:
            logger.debug("merchant %s cannot read notifications: %s", mchid, exc)
    return found


def _claimed(body: bytes | None) -> tuple[str, str]:
    """(id, event_type) an untrusted body says it has, for the record; blank if none."""
    if not body:
        return "", ""
    try:
        envelope = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return "", ""
    if not isinstance(envelope, dict):
        return "", ""
    return _printable(envelope.get("id"), 64), _printable(envelope.get("event_type"), 64)


def _refused(
    headers: Mapping[str, str], body: bytes | None, exc: NotificationError, verdict: Verdict
) -> Received:
    notification_id, event_type = _claimed(body)
    record = Notification.objects.create(
        notification_id=notification_id,
        event_type=event_type,
        request_id=_printable(headers.get("Request-ID"), 128),
        verified=False,
        failure=_printable(str(exc), 200),
    )
    if verdict is Verdict.PROBE:
        logger.info("WeChat Pay's signature probe refused, as it asks (notification %s)",
                    record.pk)  # fmt: skip
    else:
        logger.warning("notification %s refused: %s", record.pk, record.failure)
    return Received(record, verdict, exc.step, exc.message)


def _differing(notice_ids: dict[str, str], refund: Refund) -> str:
    """The ids of the notice that differ from what the site holds, as words ('' if none)."""
    held = {"refund_id": refund.refund_id, "transaction_id": refund.job.transaction_id,
            "sub_mchid": refund.job.sub_mchid}  # fmt: skip
    differ = [k for k, v in notice_ids.items() if held[k] and v and held[k] != v]
    return ", ".join(differ)


def _judge(read: ReadNotification, record: Notification) -> tuple[Verdict, RefundJob | None]:
    """What a verified notice means; fills ``record`` (job, duplicate, changed)."""
    notice = read.refund
    if notice is None:
        record.changed = "nothing: not a refund notice"
        return Verdict.NOTHING_TO_DO, None
    refund = (
        Refund.objects.select_related("job")
        .filter(mchid=read.mchid, out_refund_no=notice.out_refund_no)
        .first()
    )
    taken = Notification.objects.filter(
        mchid=read.mchid, out_refund_no=record.out_refund_no,
        refund_status=record.refund_status, verified=True,
    )  # fmt: skip
    if refund is None:
        record.duplicate = taken.exists()
        record.changed = "nothing: no refund job made this refund (an orphan)"
        return (Verdict.DUPLICATE if record.duplicate else Verdict.ORPHAN), None
    job = RefundJob.objects.select_for_update().get(pk=refund.job_id)  # one judge at a time
    record.job = job
    if taken.exists():
        record.duplicate, record.changed = True, "nothing: a duplicate"
        return Verdict.DUPLICATE, None
    if job.state not in ACTIVE_JOB_STATES:  # ended, a draft, or waiting for an operator
        record.changed = f"nothing: the refund job does not move (state {job.state})"
        return Verdict.NOTHING_TO_DO, None
    ids = {"refund_id": notice.refund_id, "transaction_id": notice.transaction_id,
           "sub_mchid": notice.sub_mchid or ""}  # fmt: skip
    differ = _differing(ids, refund)
    record.changed = "the refund job looks now"
    if differ:
        record.changed += f" (the notice's {differ} differ from the job's)"
        logger.warning("notification %s: %s differ from refund job %s's", read.id, differ, job.pk)
    return Verdict.ACCEPTED, job


def _verified(read: ReadNotification) -> Received:
    notice = read.refund
    resource = read.resource
    record = Notification(
        mchid=_printable(read.mchid, 32),
        notification_id=_printable(read.id, 64),
        event_type=_printable(str(read.event_type), 64),
        request_id=_printable(read.request_id, 128),
        out_refund_no=_printable(notice.out_refund_no if notice else "", 64),
        refund_id=_printable(notice.refund_id if notice else "", 32),
        transaction_id=_printable(getattr(resource, "transaction_id", ""), 32),
        refund_status=_printable(str(notice.refund_status) if notice else "", 16),
        verified=True,
    )
    with transaction.atomic():
        verdict, job = _judge(read, record)
        record.save()
    logger.info("notification %s (%s %s): %s", record.pk, record.event_type,
                record.out_refund_no, record.changed)  # fmt: skip
    return Received(record, verdict, nudge=job)


def receive(headers: Mapping[str, str], body: bytes | None) -> Received:
    """Judge and record one POST; ``body`` None: its length was over the cap, unread.

    Never raises for what was POSTed; a database failure propagates (the site answers
    500, and WeChat Pay sends it again).
    """
    if body is None or len(body) > MAX_BODY_BYTES:
        too_large = BodyTooLarge(f"the body is over {MAX_BODY_BYTES} bytes")
        return _refused(headers, None, too_large, Verdict.REFUSED)
    keys = _all_keys()
    if not keys:
        record = Notification.objects.create(
            request_id=_printable(headers.get("Request-ID"), 128),
            failure="no merchant of this site can read notifications (APIV3_KEY)",
        )
        logger.error("notification %s unread: no merchant has an APIv3 key", record.pk)
        return Received(record, Verdict.UNREADABLE, message=record.failure)
    reader = NotificationReader(keys, nonces=_NONCES, max_size=MAX_BODY_BYTES)
    try:
        read = reader.read_any(headers, body)
    except SignatureProbe as exc:
        return _refused(headers, body, exc, Verdict.PROBE)
    except NotificationError as exc:
        return _refused(headers, body, exc, Verdict.REFUSED)
    return _verified(read)
