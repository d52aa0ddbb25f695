"""Bad input through the operator's doors: management command arguments and the admin form.

Why property-based: cron lines and shell scripts pass whatever text they hold, and
operators paste whatever the ticket says. Any value must end either in a run (a
saved return) or in a ``CommandError`` / a re-displayed form with its error (exit
code 1, no traceback in the cron mail, no 500 page); a crash with another exception,
or a value accepted that later blows up (``--interval inf`` sleeping forever, a NUL
byte that PostgreSQL refuses, a taken out_return_no), is a bug. The oracle says which
values are valid from their documented meaning (``test_properties.ORACLE`` for the
return's fields), not from the code under test. Counts go to
``test-output/bad_command_args.txt``.
"""

from __future__ import annotations

import math
from collections import Counter
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from .conftest import examples, unique_no
from .test_properties import ORACLE

pytestmark = pytest.mark.django_db

COUNTS: Counter = Counter()
SETTINGS = settings(
    max_examples=examples(150),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
NUMBERISH = st.one_of(
    st.text(max_size=12),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["inf", "-inf", "nan", "1e400", " 5 ", "0x10", "1_000", "٣", ""]),
)


def positive_int(text: str) -> bool:
    try:
        return int(text) >= 1
    except ValueError:
        return False


def positive_seconds(text: str) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return math.isfinite(value) and value > 0


@pytest.fixture
def no_sleep(monkeypatch):
    """``--loop`` sleeps between passes: record the requested seconds instead."""
    import django_wxpay_profitsharing.management.commands.wxpay_process_returns as command

    slept = []

    def sleep(seconds):
        if not math.isfinite(seconds) or seconds < 0:
            raise OverflowError("time.sleep would refuse this")  # as the real one does
        slept.append(seconds)

    monkeypatch.setattr(command.time, "sleep", sleep)
    return slept


def outcome(*args) -> str:
    try:
        call_command(*args, stdout=StringIO(), stderr=StringIO())
    except CommandError:
        return "refused"
    return "ran"


@SETTINGS
@given(limit=NUMBERISH)
def test_process_returns_limit(limit):
    valid = positive_int(limit)
    COUNTS[f"command arguments: {'valid' if valid else 'invalid'}"] += 1
    assert outcome("wxpay_process_returns", "--limit", limit) == ("ran" if valid else "refused")


@SETTINGS
@given(interval=NUMBERISH, passes=NUMBERISH)
def test_process_returns_loop_arguments(no_sleep, interval, passes):
    """``--loop --interval X --max-passes N``; the loop really sleeps X between passes.

    An empty ``--interval`` means the default (10 s), as an unset shell variable would.
    """
    valid = (
        (interval == "" or positive_seconds(interval)) and positive_int(passes) and int(passes) <= 3
    )
    if positive_int(passes) and int(passes) > 3:
        passes = "3"  # a valid but long loop: keep the run short
        valid = interval == "" or positive_seconds(interval)
    COUNTS[f"command arguments: {'valid' if valid else 'invalid'}"] += 1
    result = outcome(
        "wxpay_process_returns", "--loop", "--interval", interval, "--max-passes", passes
    )
    assert result == ("ran" if valid else "refused"), (interval, passes)


def test_max_passes_error_names_its_own_option():
    """The message must name the argument that is wrong, not another one."""
    with pytest.raises(CommandError, match="--max-passes"):
        call_command("wxpay_process_returns", "--loop", "--max-passes", "0", stdout=StringIO())


@SETTINGS
@given(number=st.text(max_size=70))
def test_return_status_with_any_number(number):
    """An unknown number, whatever its characters (NUL included), is a CommandError."""
    COUNTS["command arguments: invalid"] += 1
    with pytest.raises(CommandError):
        call_command("wxpay_return_status", number, "--no-refresh", stdout=StringIO())


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    yield
    if COUNTS:
        from pathlib import Path

        out = Path(__file__).resolve().parent.parent / "test-output" / "bad_command_args.txt"
        out.parent.mkdir(exist_ok=True)
        out.write_text(
            "".join(f"{k}: {v}\n" for k, v in sorted(COUNTS.items())),
            encoding="utf-8",
        )


# ------------------------------------------------------------- the admin add form
ADD = "/admin/wxpay_profitsharing/profitsharingreturn/add/"
INLINE = {"calls-TOTAL_FORMS": "0", "calls-INITIAL_FORMS": "0"}  # the calls inline's form


@pytest.fixture
def admin_client(db):
    from django.contrib.auth.models import User
    from django.test import Client

    client = Client(raise_request_exception=False)
    client.force_login(User.objects.create_superuser("root", "r@example.com", "pw"))
    return client


def yuan_ok(text: str) -> bool:
    """Yuan as an operator types it (issue 12.12): ASCII digits, at most two decimals.

    At least 0.01, and no more fen than WeChat's int64; no exponent, no underscore,
    no other script's digits, no sign. Surrounding whitespace is trimmed.
    """
    from decimal import Decimal

    text = text.strip()
    whole, point, decimals = text.partition(".")
    ascii_digits = set("0123456789")
    if not whole or not set(whole) <= ascii_digits or len(whole) > 17:
        return False
    if point and (not 1 <= len(decimals) <= 2 or not set(decimals) <= ascii_digits):
        return False
    return 1 <= Decimal(text) * 100 <= 2**63 - 1


def form_valid(data: dict) -> bool:
    cleaned = {k: v.strip() for k, v in data.items() if k != "amount_yuan"}
    for name, value in cleaned.items():
        if value == "" and name in ("out_return_no", "sub_mchid", "order_id", "out_order_no"):
            continue
        if not ORACLE[name](value):
            return False
    ids = [n for n in ("order_id", "out_order_no") if cleaned.get(n)]
    return len(ids) == 1 and yuan_ok(data["amount_yuan"])


TEXT = st.text(st.characters(codec="utf-8"), max_size=90)
AMOUNTS = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.decimals(min_value=0, max_value=10**6, places=2).map(str),
    st.sampled_from(
        [
            "",
            "0",
            "0.001",
            "1e3",
            "12.34",
            " 5 ",
            "-1",
            "١٢",
            "1.005",
            "1_000",
            "１００",
            "+1",
            "12.",
            ".5",
            "0.00",
            "99999999999999999.99",
            "NaN",
        ]
    ),
    TEXT,
)


@st.composite
def add_forms(draw):
    """A valid form (amount in yuan), then zero to two of its fields replaced by any text."""
    data = {
        "sub_mchid": draw(st.sampled_from(["", "1900000109"])),
        "out_order_no": draw(st.from_regex(r"[0-9A-Za-z_*@|\-]{1,64}", fullmatch=True)),
        "order_id": "",
        # Fresh each time: a taken number is the deterministic test below.
        "out_return_no": draw(st.sampled_from(["", unique_no("RA")])),
        "return_mchid": draw(st.from_regex(r"[0-9]{1,32}", fullmatch=True)),
        "amount_yuan": str(draw(st.decimals(min_value="0.01", max_value=10**6, places=2))),
        "description": draw(st.sampled_from(["退款", "refund 1", "用户退款 ✓"])),
    }
    for name in draw(st.sets(st.sampled_from(sorted(data)), max_size=2)):
        data[name] = draw(AMOUNTS if name == "amount_yuan" else TEXT)
    return data


@SETTINGS
@given(data=add_forms())
def test_admin_add_form_answers_form_errors(admin_client, data):
    """Valid input saves a pending return; anything else re-displays the form, never 500."""
    from django_wxpay_profitsharing.models import ProfitSharingReturn

    number = (data.get("out_return_no") or "").strip()
    # A number taken by an earlier example is the conflict case, tested on its own below.
    assume(not number or not ProfitSharingReturn.objects.filter(out_return_no=number).exists())
    before = ProfitSharingReturn.objects.count()
    response = admin_client.post(ADD, {**data, **INLINE})
    valid = form_valid(data)
    COUNTS[f"admin add form: {'valid' if valid else 'invalid'}"] += 1
    assert response.status_code in (200, 302), (data, response.status_code)
    assert response.status_code == (302 if valid else 200), (data, response.status_code)
    if valid:
        assert ProfitSharingReturn.objects.count() == before + 1
    else:
        assert b"errorlist" in response.content or b"errornote" in response.content
        assert ProfitSharingReturn.objects.count() == before


def test_admin_add_with_a_taken_number_and_other_fields_is_a_form_error(admin_client):
    """The same out_return_no with other fields: a form error (409 in the API), not a 500."""
    data = {
        "sub_mchid": "1900000109",
        "out_order_no": "P1",
        "return_mchid": "86693852",
        "out_return_no": "RTAKEN1",
        "amount_yuan": "1.00",
        "description": "first",
    }
    assert admin_client.post(ADD, {**data, **INLINE}).status_code == 302
    response = admin_client.post(ADD, {**data, **INLINE, "amount_yuan": "2.00"})
    assert response.status_code == 200, response.status_code
    assert b"errorlist" in response.content


def form_for(amount_yuan: str, description: str = "退款"):
    from django_wxpay_profitsharing.forms import ProfitSharingReturnForm

    return ProfitSharingReturnForm(
        data={
            "sub_mchid": "1900000109",
            "out_order_no": "P1",
            "order_id": "",
            "out_return_no": "",
            "return_mchid": "86693852",
            "amount_yuan": amount_yuan,
            "description": description,
        }
    )


@pytest.mark.parametrize(
    ("text", "fen"), [("12.34", 1234), ("12", 1200), ("0.01", 1), (" 5 ", 500)]
)
def test_admin_form_takes_yuan_with_at_most_two_decimals(text, fen):
    form = form_for(text)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["amount"] == fen


@pytest.mark.parametrize(
    "text",
    ["1.005", "1e3", "1E3", "1_000", "１００", "١٢", "٣", "-1", "+1", "12.", ".5", "0", "0.00",
     "NaN", "Infinity", "1,000", "0x10", "99999999999999999.99", "1" * 18],
)  # fmt: skip
def test_admin_form_refuses_other_amounts(text):
    form = form_for(text)
    assert not form.is_valid()
    assert list(form.errors) == ["amount_yuan"], form.errors


@pytest.mark.parametrize(
    "description", ["\u200b", "a\u202eb", "a\u2067b", "del\x7f", "a\u2028b", "a\x85b", "\u2060 "]
)
def test_admin_form_refuses_invisible_descriptions(description):
    form = form_for("1.00", description)
    assert not form.is_valid()
    assert list(form.errors) == ["description"], form.errors
