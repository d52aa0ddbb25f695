"""Mirror a sharing order from WeChat Pay (查询分账结果): the order and exactly its lines.

Why its own module: the mirror is what the ledger, the clawbacks and the refund jobs all
read what may still come back from; a sync writes WeChat Pay's answer, and only an
answer about the very order asked, whose values fit the mirror's columns
(``answers.py``), so a signed answer about another order is never stored as this one.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from . import services
from .answers import AnswerMismatch, misfits
from .clients import client_for
from .dbtime import for_db
from .models.sharing_orders import ProfitSharingOrder, ProfitSharingOrderReceiver
from .wechatpay import WeChatPayClient
from .wechatpay.client_core import OnCall
from .wechatpay.models import SharingOrder

#: A receiver line's values from WeChat Pay's answer, as the mirror keeps them.
LINE_FIELDS = ("type", "account", "amount", "result", "fail_reason", "detail_id", "create_time",
               "finish_time")  # fmt: skip


def sync_order(
    *,
    out_order_no: str,
    transaction_id: str,
    sub_mchid: str | None = None,
    mchid: str | None = None,
    client: WeChatPayClient | None = None,
    on_call: OnCall | None = None,
) -> ProfitSharingOrder:
    """Mirror 查询分账结果 for one sharing order: the order and exactly its receiver lines.

    ``on_call`` hears the call (a refund job records every call it made).

    A sync replaces the line set: a line WeChat Pay no longer lists goes, so nothing
    is allocated from it. Raises the client's typed errors (``errors.APIError`` for an
    unknown order, ``errors.InvalidRequest`` for a malformed number) and
    :class:`~.answers.AnswerMismatch` for an answer about another order or with values
    no column holds; nothing is written then.
    """
    mchid = services.merchant_id(mchid)
    client = client or client_for(mchid)
    answer = client.query_order(out_order_no, transaction_id, sub_mchid or None, on_call=on_call)
    wrong = order_answer_problems(answer, out_order_no, transaction_id, sub_mchid)
    if wrong:
        raise AnswerMismatch(wrong)
    now = timezone.now()
    with transaction.atomic():
        order, _created = ProfitSharingOrder.objects.select_for_update().get_or_create(
            mchid=mchid,
            sub_mchid=sub_mchid or "",
            out_order_no=out_order_no,
            defaults={"transaction_id": transaction_id},
        )
        order.transaction_id = answer.transaction_id or transaction_id
        order.order_id = answer.order_id
        order.state = answer.state
        order.synced_at = now
        order.response_json = answer.raw
        order.save()
        listed = [(line.type, line.account) for line in answer.receivers]
        stale = order.receivers.all()
        for kind, account in listed:
            stale = stale.exclude(type=kind, account=account)
        stale.delete()
        for line in answer.receivers:
            ProfitSharingOrderReceiver.objects.update_or_create(
                order=order,
                type=line.type,
                account=line.account,
                defaults={
                    "amount": line.amount,
                    "description": line.description or "",
                    "result": line.result,
                    "fail_reason": line.fail_reason or "",
                    "detail_id": line.detail_id or "",
                    "create_time": for_db(line.create_time),
                    "finish_time": for_db(line.finish_time),
                },
            )
    return order


def order_answer_problems(
    answer: SharingOrder, out_order_no: str, transaction_id: str, sub_mchid: str | None
) -> list[str]:
    """What in 查询分账结果's answer names another order, or does not fit the mirror."""
    wrong = [
        name
        for name, asked in (("out_order_no", out_order_no), ("transaction_id", transaction_id),
                            ("sub_mchid", sub_mchid))
        if getattr(answer, name) and asked and getattr(answer, name) != asked
    ]  # fmt: skip
    wrong += misfits(
        ProfitSharingOrder,
        {"order_id": answer.order_id, "state": answer.state, "transaction_id":
         answer.transaction_id},
    )  # fmt: skip
    lines = [(line.type, line.account) for line in answer.receivers]
    if len(set(lines)) != len(lines):
        wrong.append("receivers")  # one line per receiver: a repeated one is not a ledger
    for index, line in enumerate(answer.receivers):
        values = {name: getattr(line, name) for name in LINE_FIELDS}
        values["description"] = line.description or ""
        wrong += [f"receivers[{index}].{name}"
                  for name in misfits(ProfitSharingOrderReceiver, values)]  # fmt: skip
    return wrong
