"""The control routes of payments, merchants' balances, refunds and notifications.

=======  ===============================  ===========================================
POST     /_simulator/payments             seed a payment -> 201 its view
GET      /_simulator/payments/{id}        a payment (``?mchid=``) with its unsplit
                                          amount, whether its splits are open, and
                                          its refunds' numbers
POST     /_simulator/merchants            {"account", "balance"?, "refund_when_short"?}
                                          -> the account's available balance (fen;
                                          null: unlimited) and what a refund it cannot
                                          pay meets: "refuse" (403 NOT_ENOUGH, the
                                          default) or "hold" (PROCESSING, CLOSED after
                                          7 days)
GET      /_simulator/refunds              {"refunds": [entities as of now, each with
                                          ``mchid``, ``sub_mchid``, ``notify_url``]}
GET      /_simulator/notifications        {"notifications": [each with its attempts:
                                          when, the shop's status, the fault]}
=======  ===============================  ===========================================

A payment (``POST /_simulator/payments``): ``out_trade_no``, ``total`` (fen),
``transaction_id`` (generated when absent), ``mchid`` (the merchant whose books hold
it; default the first), ``sub_mchid`` (partner form; absent: direct), ``success_time``
(RFC 3339 or unix seconds; default now), ``profit_sharing`` (default true),
``frozen_days`` (default 30: when its frozen money unfreezes by itself). A sharing
order seeded afterwards with its ``transaction_id`` is one of its splits.

Why an account's balance is the receivers' one: one account has one available balance,
whether it receives splits, gives them back or pays refunds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .app import Simulator
from .ledger_records import KEEP, Keep
from .refunds import POLICIES
from .wire import Incoming

Handler = Callable[[Incoming, dict[str, list[str]]], tuple[int, Any]]
MERCHANT_FIELDS = frozenset({"account", "balance", "refund_when_short"})


class RouteError(Exception):
    """A refused control request (the control surface answers it with ``status``)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def routes(
    sim: Simulator, body: Callable[[Incoming], dict[str, Any]]
) -> dict[tuple[str, str], Handler]:
    """The routes above, for ``ControlApi``; ``body`` reads a request's JSON object."""

    def seed_payment(req: Incoming, _: dict[str, list[str]]) -> tuple[int, Any]:
        return 201, sim.payments.seed(body(req))

    def set_merchant(req: Incoming, _: dict[str, list[str]]) -> tuple[int, Any]:
        data = body(req)
        account = data.get("account")
        if not isinstance(account, str) or not account.isdigit():
            raise RouteError(400, "account must be a merchant id (digits)")
        unknown = sorted(set(data) - MERCHANT_FIELDS)
        if unknown:
            raise RouteError(400, f"unknown merchant field(s): {', '.join(unknown)}")
        balance: int | Keep | None = KEEP
        if "balance" in data:
            balance = data["balance"]
            if balance is not None and (
                isinstance(balance, bool) or not isinstance(balance, int) or balance < 0
            ):
                raise RouteError(400, "balance must be an integer >= 0 (fen) or null")
        policy = data.get("refund_when_short")
        if policy is not None and policy not in POLICIES:
            raise RouteError(400, f"refund_when_short must be one of {', '.join(POLICIES)}")
        flags = sim.ledger.mark_receiver(
            account, abnormal=None, return_enabled=None, balance=balance
        )
        if policy is not None:
            sim.refunds.set_policy(account, policy)
        return 200, {
            "account": account,
            "balance": flags["balance"],
            "refund_when_short": sim.refunds.policies.get(account, POLICIES[0]),
        }

    def list_refunds(_: Incoming, params: dict[str, list[str]]) -> tuple[int, Any]:
        return 200, {"refunds": sim.refunds.views(params.get("mchid", [None])[0] or None)}

    def list_notifications(_: Incoming, __: dict[str, list[str]]) -> tuple[int, Any]:
        return 200, {"notifications": sim.notifier.views()}

    return {
        ("POST", "payments"): seed_payment,
        ("POST", "merchants"): set_merchant,
        ("GET", "refunds"): list_refunds,
        ("GET", "notifications"): list_notifications,
    }


def payment_view(
    sim: Simulator, transaction_id: str, params: dict[str, list[str]]
) -> dict[str, Any]:
    """``GET /_simulator/payments/{transaction_id}`` (``?mchid=``, default the first)."""
    mchid = params.get("mchid", [""])[0] or sim.ledger.mchid
    with sim.payments.lock:
        payment = sim.payments.find_any(mchid, transaction_id)
        if payment is None:
            raise RouteError(404, f"no payment {transaction_id}")
        return sim.payments.view(payment)
