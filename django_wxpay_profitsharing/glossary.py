"""The operator's words, once: each English term, its one Chinese term and what it means.

Why a table in code: the admin, the API's messages, the commands and the docs all speak
of returns, clawbacks, sharing orders and refunds; a person must read the same word for
the same thing on every page, in either language. ``docs/generate.py`` renders this
table as ``docs/glossary.md``; ``tests/test_glossary.py`` reads the compiled zh_Hans
catalogue and fails when a translation names a term without its Chinese word (its
``root``), or uses the word of a term the English does not name (a clawback called a
回退单, a return called a 追回).

``pattern`` finds the term in an English message (a regular expression, case
ignored); ``root`` is what every translation of such a message contains (the Chinese
term itself or its stem: 追回单 is the clawback, 追回 the verb); ``avoid`` lists
synonyms that no translation uses for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Term:
    """One operator's word: its label (translated: the Chinese term) and its meaning."""

    label: Promise
    meaning: Promise
    pattern: str
    root: str
    avoid: tuple[str, ...] = ()
    #: Terms whose root a translation of this one never uses unless the English names
    #: them too: a clawback is no 回退单, a return no 追回, a refund no 回退.
    confused_with: tuple[str, ...] = ()


#: English term -> its label and meaning. The order is the glossary page's.
TERMS: dict[str, Term] = {
    "sharing order": Term(
        _("sharing order"),
        _(
            "A payment's split among its receivers at WeChat Pay (分账), known by its "
            "out_order_no; the app keeps a mirror of it."
        ),
        r"\bsharing orders?\b",
        "分账单",
        avoid=("分账订单", "分帐"),
    ),
    "receiver": Term(
        _("receiver"),
        _(
            "Who was given a share of a sharing order: a merchant (MERCHANT_ID), the only kind "
            "money can be returned from, or a person (an openid)."
        ),
        r"\breceivers?\b(?! raised| error)",  # a signal's receiver is none
        "接收方",
        avoid=("收款方", "接受方"),
    ),
    "return": Term(
        _("return"),
        _(
            "One request that takes money back from one merchant receiver of a sharing order "
            "(WeChat Pay's 分账回退); its number is the out_return_no."
        ),
        r"\breturn(s|ed|able)?\b",
        "回退",
        avoid=("退回", "返还"),
        confused_with=("clawback", "refund"),
    ),
    "clawback": Term(
        _("clawback"),
        _(
            "The app's order-level job: one amount taken back from a sharing order's "
            "receivers, made of one return per receiver, named by your out_clawback_no. "
            "To claw back: 追回."
        ),
        r"\bclaw(backs?|ing back| back|ed back|s back)\b",
        "追回",
        avoid=("回收", "扣回", "追缴"),
        confused_with=("return",),
    ),
    "refund": Term(
        _("refund"),
        _("Money paid back to the customer from a payment (WeChat Pay's 退款)."),
        r"\brefund(s|ed|ing)?\b",
        "退款",
        avoid=("退钱", "返款"),
        confused_with=("return",),
    ),
    "refund job": Term(
        _("refund job"),
        _(
            "The app's job that carries out one refund: it plans where the money comes from, "
            "unfreezes, claws back, refunds and follows the refund to its end."
        ),
        r"\brefund jobs?\b",
        "退款任务",
    ),
    "unfreeze": Term(
        _("unfreeze"),
        _(
            "Releasing what is still frozen of a payment to the merchant "
            "(WeChat Pay's 解冻剩余资金)."
        ),
        r"\bunfreez(e|es|ing)\b|\bunfrozen\b",
        "解冻",
    ),
    "top-up": Term(
        _("top-up"),
        _(
            "Money a receiver adds to its balance, so that a return WeChat Pay holds for a "
            "short balance goes through."
        ),
        r"\btop(s|ped)? up\b|\btop-up\b",
        "充值",
    ),
    "draft": Term(
        _("draft"),
        _("Made but not sent: it waits for someone who may submit or approve it."),
        r"\bdrafts?\b",
        "草稿",
    ),
    "submit": Term(
        _("submit"),
        _("To send a draft return or clawback to WeChat Pay."),
        r"\bsubmit(s|ted)?\b",
        "提交",
    ),
    "approve": Term(
        _("approve"),
        _("To let a draft refund job move money (by a second person, when two are required)."),
        r"\bapprov(e|es|ed|al)\b",
        "批准",
    ),
    "merchant": Term(
        _("merchant"),
        _("The WeChat Pay merchant (mchid) whose credentials make the calls."),
        r"\bmerchants?\b",
        "商户",
        avoid=("商家",),
    ),
    "sub-merchant": Term(
        _("sub-merchant"),
        _("A merchant a service provider acts for (sub_mchid), in the partner mode."),
        r"\bsub-merchants?\b",
        "子商户",
        avoid=("特约商户",),
    ),
    "reconciliation": Term(
        _("reconciliation"),
        _("Comparing the local returns with WeChat Pay's daily profit-sharing bill."),
        r"\breconcil(e|es|ed|ing|iation)\b",
        "对账",
    ),
    "discrepancy": Term(
        _("discrepancy"),
        _("One way a return in the bill and the local one disagree."),
        r"\bdiscrepanc(y|ies)\b",
        "差异",
    ),
    "fen": Term(
        _("fen"),
        _("WeChat Pay's unit of money, 1/100 yuan: the API's amounts are in fen."),
        r"\bfen\b",
        "分",
    ),
    "yuan": Term(
        _("yuan"),
        _("What a person reads: the admin and the example shop show amounts in yuan (¥)."),
        r"\byuan\b",
        "元",
    ),
}


#: A message's placeholders (``{yuan}``, ``%(count)d``): names of values, not words.
PLACEHOLDER = re.compile(r"\{\w*\}|%\(\w+\)[sdi]")


def names(term: Term, english: str) -> bool:
    """Whether an English message speaks of ``term`` (its placeholders aside)."""
    return re.search(term.pattern, PLACEHOLDER.sub(" ", english), re.IGNORECASE) is not None


def offences(catalogue: Mapping[str, str]) -> Iterator[str]:
    """Each translation (msgid -> msgstr) that breaks the glossary, said in a line."""
    for english, chinese in catalogue.items():
        if not english or not chinese:
            continue
        for key, term in TERMS.items():
            for synonym in term.avoid:
                if synonym in chinese:
                    yield f"{english!r}: {chinese!r} says {synonym}, not {term.root} ({key})"
            if not names(term, english):
                continue
            if term.root not in chinese:
                yield f"{english!r}: {chinese!r} names {key} without {term.root}"
            for other in term.confused_with:
                root = TERMS[other].root
                if root in chinese and not names(TERMS[other], english):
                    yield f"{english!r}: {chinese!r} calls the {key} {root} ({other})"
