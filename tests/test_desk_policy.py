"""The send policy (``desk/policy.py``), row by row, without a database or HTTP.

Like ``test_decisions.py`` for the state machine: every (what is made, door) pair is
restated here independently, the table must hold exactly these rows, and
:func:`decide` is checked for every row under every combination of the facts that
matter (the settings, the permission, the count against the threshold).
"""

from __future__ import annotations

import itertools

import pytest

from django_wxpay_profitsharing.access import Perm
from django_wxpay_profitsharing.desk.policy import (
    SEND_POLICY,
    Ask,
    Disposition,
    Door,
    Facts,
    Made,
    decide,
)

SUBMIT = {Perm.SUBMIT_RETURN}
CLAWBACK = {Perm.SUBMIT_CLAWBACK, Perm.SUBMIT_RETURN}
A, C, N, X = Ask.ALWAYS, Ask.CALLER, Ask.NEVER, Ask.ON_CREATE_SETTING

#: (made, door) -> (who asks, permissions needed, SUBMIT_IN_BACKGROUND applies, moves money)
EXPECTED = {
    (Made.RETURN, Door.API): (X, SUBMIT, True, True),
    (Made.RETURN, Door.ADMIN): (N, SUBMIT, False, True),
    (Made.RETURN, Door.CODE): (C, set(), True, True),
    (Made.CLAWBACK, Door.API): (X, CLAWBACK, True, True),
    (Made.CLAWBACK, Door.ADMIN): (A, CLAWBACK, False, True),
    (Made.CLAWBACK, Door.CODE): (C, set(), True, True),
    (Made.REPLACEMENT, Door.API): (X, SUBMIT, True, True),
    (Made.REPLACEMENT, Door.ADMIN): (A, SUBMIT, False, True),
    (Made.REPLACEMENT, Door.CODE): (C, set(), True, True),
    (Made.APPROVAL, Door.API): (A, SUBMIT, False, True),
    (Made.APPROVAL, Door.ADMIN): (A, SUBMIT, False, True),
    (Made.APPROVAL, Door.CODE): (A, set(), False, True),
    (Made.CLAWBACK_APPROVAL, Door.API): (A, CLAWBACK, False, True),
    (Made.CLAWBACK_APPROVAL, Door.ADMIN): (A, CLAWBACK, False, True),
    (Made.CLAWBACK_APPROVAL, Door.CODE): (A, set(), False, True),
    (Made.RETRY, Door.API): (A, SUBMIT, False, True),
    (Made.RETRY, Door.ADMIN): (A, SUBMIT, False, True),
    (Made.RETRY, Door.CODE): (A, set(), False, True),
    (Made.REFRESH, Door.API): (A, {Perm.REFRESH_RETURN}, False, False),
    (Made.REFRESH, Door.ADMIN): (A, {Perm.REFRESH_RETURN}, False, False),
    (Made.REFRESH, Door.CODE): (A, set(), False, False),
    (Made.REFUND, Door.API): (X, {Perm.SUBMIT_REFUND}, True, True),
    (Made.REFUND, Door.ADMIN): (N, {Perm.SUBMIT_REFUND}, False, True),
    (Made.REFUND, Door.CODE): (C, set(), True, True),
    (Made.REFUND_APPROVAL, Door.API): (A, {Perm.SUBMIT_REFUND}, False, True),
    (Made.REFUND_APPROVAL, Door.ADMIN): (A, {Perm.SUBMIT_REFUND}, False, True),
    (Made.REFUND_APPROVAL, Door.CODE): (A, set(), False, True),
    (Made.REFUND_ACTION, Door.API): (A, {Perm.OPERATE_REFUND}, False, True),
    (Made.REFUND_ACTION, Door.ADMIN): (A, {Perm.OPERATE_REFUND}, False, True),
    (Made.REFUND_ACTION, Door.CODE): (A, set(), False, True),
}


def test_the_table_has_exactly_the_expected_rows():
    assert set(SEND_POLICY) == set(EXPECTED)
    assert set(SEND_POLICY) == set(itertools.product(Made, Door))  # every pair, once


@pytest.mark.parametrize("key", sorted(EXPECTED, key=str))
def test_each_row(key):
    rule = SEND_POLICY[key]
    ask, needs, background_setting, moves_money = EXPECTED[key]
    assert (rule.ask, set(rule.needs), rule.follows_background_setting, rule.moves_money) == (
        ask,
        needs,
        background_setting,
        moves_money,
    )


def expected_disposition(key, on_create, in_background, allowed, caller, count, threshold):
    """The policy restated: who asks, who may, then when."""
    ask, _needs, background_setting, _moves = EXPECTED[key]
    asks = {A: True, N: False, X: on_create, C: caller}[ask]
    if not asks or not allowed or count < 1:
        return Disposition.DRAFT
    if count > threshold or (background_setting and in_background):
        return Disposition.SEND_IN_BACKGROUND
    return Disposition.SEND_NOW


FACT_VALUES = list(itertools.product([False, True], [False, True], [False, True], [False, True],
                                     [0, 1, 20, 21]))  # fmt: skip


@pytest.mark.parametrize("key", sorted(EXPECTED, key=str))
def test_decide_under_every_fact(key):
    for on_create, in_background, allowed, caller, count in FACT_VALUES:
        facts = Facts(
            submit_on_create=on_create,
            submit_in_background=in_background,
            background_threshold=20,
            count=count,
            allowed=allowed,
            caller_asks=caller,
        )
        wanted = expected_disposition(key, on_create, in_background, allowed, caller, count, 20)
        assert decide(*key, facts) is wanted, (key, facts)


def test_a_missing_row_is_a_bug_not_a_guess(monkeypatch):
    monkeypatch.delitem(SEND_POLICY, (Made.RETURN, Door.API))
    facts = Facts(True, False, 20, 1, True)
    with pytest.raises(LookupError, match="no send policy"):
        decide(Made.RETURN, Door.API, facts)


def test_the_admin_add_form_drafts_and_an_api_create_follows_the_setting():
    """The two rules a shop meets first, spelled out."""
    on = Facts(submit_on_create=True, submit_in_background=False, background_threshold=20,
               count=1, allowed=True)  # fmt: skip
    off = Facts(submit_on_create=False, submit_in_background=False, background_threshold=20,
                count=1, allowed=True)  # fmt: skip
    assert decide(Made.RETURN, Door.ADMIN, on) is Disposition.DRAFT
    assert decide(Made.RETURN, Door.API, on) is Disposition.SEND_NOW
    assert decide(Made.RETURN, Door.API, off) is Disposition.DRAFT
    # A confirmed clawback in the admin is sent whatever SUBMIT_ON_CREATE says.
    assert decide(Made.CLAWBACK, Door.ADMIN, off) is Disposition.SEND_NOW


@pytest.mark.parametrize("key", sorted(EXPECTED, key=str))
def test_a_caller_that_must_answer_first_hands_the_work_off(key):
    """WeChat Pay's notification: whatever the row and the settings, the work is handed
    off when it is sent at all; what would be a draft stays one."""
    for on_create, in_background, allowed, caller, count in FACT_VALUES:
        facts = Facts(submit_on_create=on_create, submit_in_background=in_background,
                      background_threshold=20, count=count, allowed=allowed,
                      caller_asks=caller, caller_waits=False)  # fmt: skip
        waiting = expected_disposition(key, on_create, in_background, allowed, caller, count, 20)
        wanted = Disposition.DRAFT if waiting is Disposition.DRAFT else Disposition.HAND_OFF
        assert decide(*key, facts) is wanted, (key, facts)
