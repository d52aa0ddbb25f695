"""The desk's operation for WeChat Pay's notifications: judge, record, make the job look.

The door (the ``notifications/`` view) hands over the headers and the raw body; the
service (``refund_notifications``) judges and records the POST; here a trusted refund
notice makes its job look now, handed off so that the answer never waits for WeChat
Pay (which gives the site 5 s): the job's own machinery queries the refund, and
polling, not the notice, decides its status.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..refund_notifications import MAX_BODY_BYTES, Received, Verdict, receive
from .policy import Door
from .refunds import refresh_refund

__all__ = ["MAX_BODY_BYTES", "Received", "Verdict", "receive_notification"]


def receive_notification(headers: Mapping[str, str], body: bytes | None) -> Received:
    """Judge and record one POST (``body`` None: over ``MAX_BODY_BYTES``, left unread);
    an accepted refund notice hands its job a look now, after commit."""
    received = receive(headers, body)
    if received.nudge is not None:
        refresh_refund(received.nudge, by=None, door=Door.CODE, wait=False)
    return received
