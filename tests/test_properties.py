"""Property-based tests of input validation: bad input is refused before anything is sent.

Why hypothesis: the fields of a return are free text from operators and other
services (admin form, REST API, code calling the client). A hand-picked list of bad
values misses the ones nobody thought of (a trailing newline that ``$`` lets through,
a lone surrogate that cannot be encoded, a bool that is an int). Each layer is
checked against an *oracle written from WeChat Pay's documented rules* (the request
table of 请求分账回退, and this project's decisions on what it leaves open), not against
the implementation:

- the client (``WeChatPayClient.create_return`` / ``validation.*``): every invalid
  value or combination raises ``InvalidRequest`` naming a culprit field, and no HTTP
  call is made (the ``on_call`` hook never fires, the simulator's call log does not
  grow); every valid request is sent and WeChat does not call its fields malformed;
- ``services.validate_return_fields`` (used by the admin form, the API and the
  service): every invalid field is reported under its own name, all at once;
- the DRF create serializer: the same, as field errors in a 400.

The number of examples tried per layer is written to ``test-output/bad_inputs.txt``
for the closing note.
"""

from __future__ import annotations

import json
import re
import string
import unicodedata
from collections import Counter
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from django_wxpay_profitsharing import services
from django_wxpay_profitsharing.wechatpay import WeChatPayClient, errors, validation
from django_wxpay_profitsharing.wechatpay.models import ReturnRequest

from .conftest import RECEIVER, SUB_MCHID, examples

OUTPUT = Path(__file__).resolve().parent.parent / "test-output" / "bad_inputs.txt"
COUNTS: Counter = Counter()
FIELDS = ("out_return_no", "out_order_no", "order_id", "sub_mchid", "return_mchid")
FIELDS += ("amount", "description")

# ------------------------------------------------------------------------ the oracle
# Written from the documentation, deliberately not importing the implementation's rules.
OUT_NO_CHARS = string.ascii_letters + string.digits + "_-|*@"
ORDER_ID_CHARS = string.ascii_letters + string.digits


def valid_out_no(value) -> bool:
    """string[1,64] of ``[0-9A-Za-z_*@|-]`` (the pipe as older docs allow it)."""
    return isinstance(value, str) and 1 <= len(value) <= 64 and set(value) <= set(OUT_NO_CHARS)


def valid_order_id(value) -> bool:
    """WeChat's split-order id: string[1,64], digits and letters."""
    return isinstance(value, str) and 1 <= len(value) <= 64 and set(value) <= set(ORDER_ID_CHARS)


def valid_mchid(value) -> bool:
    """A merchant id: string[1,32] of ASCII digits."""
    return isinstance(value, str) and 1 <= len(value) <= 32 and set(value) <= set(string.digits)


def valid_amount(value) -> bool:
    """An integer number of fen (not a bool, not a float), 1 .. int64 max."""
    return type(value) is int and 1 <= value <= 2**63 - 1


#: Unicode's control, format (zero-width, bidi), line and paragraph separator categories.
INVISIBLE_CATEGORIES = {"Cc", "Cf", "Zl", "Zp"}


def valid_description(value) -> bool:
    """string[1,80] (characters) of visible text, encodable as UTF-8 (issue 12.13).

    Not blank, and no character of the control, format or separator categories.
    """
    if not isinstance(value, str) or not value.strip() or len(value) > 80:
        return False
    if any(unicodedata.category(ch) in INVISIBLE_CATEGORIES for ch in value):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


REQUIRED_BY_CLIENT = frozenset({"out_return_no", "return_mchid", "amount", "description"})
#: the service generates an out_return_no when none is given
REQUIRED_BY_SERVICE = frozenset({"return_mchid", "amount", "description"})
ORACLE = {
    "out_return_no": valid_out_no,
    "out_order_no": valid_out_no,
    "order_id": valid_order_id,
    "sub_mchid": valid_mchid,
    "return_mchid": valid_mchid,
    "amount": valid_amount,
    "description": valid_description,
}

# -------------------------------------------------------------------- the strategies
NOT_STRINGS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.binary(max_size=8),
    st.lists(st.text(max_size=3), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=1),
)


def near_misses(valid: st.SearchStrategy[str], max_len: int) -> st.SearchStrategy:
    """Values that look right but are not: one bad character, too long, empty, a newline."""
    bad_char = st.characters(codec=None).filter(lambda ch: ch not in OUT_NO_CHARS)
    return st.one_of(
        st.just(""),
        st.tuples(valid, bad_char, valid).map(lambda t: (t[0] + t[1] + t[2])[: max_len + 1]),
        valid.map(lambda v: v + "\n"),
        valid.map(lambda v: " " + v),
        valid.map(lambda v: (v * (max_len // len(v) + 2))[: max_len + 1]),
        st.text(min_size=1, max_size=max_len + 5),
    )


OUT_NO = st.from_regex(r"[0-9A-Za-z_*@|\-]{1,64}", fullmatch=True)
ORDER_ID = st.from_regex(r"[0-9A-Za-z]{1,64}", fullmatch=True)
MCHID = st.from_regex(r"[0-9]{1,32}", fullmatch=True)
AMOUNT = st.integers(min_value=1, max_value=2**63 - 1)
# Any printable text, Chinese included, with at least one non-space character.
DESCRIPTION = st.text(
    st.characters(codec="utf-8", exclude_categories=sorted(INVISIBLE_CATEGORIES)),
    min_size=1,
    max_size=80,
).filter(lambda s: s.strip())
#: Zero-width, bidi overrides and isolates, BOM, soft hyphen, DEL, C1, separators.
INVISIBLE = st.one_of(
    st.sampled_from("\u200b\u200c\u200d\u2060\ufeff\u00ad\u202a\u202b\u202c\u202d\u202e"
                    "\u2066\u2067\u2068\u2069\x7f\x85\u2028\u2029"),
    st.characters(categories=sorted(INVISIBLE_CATEGORIES)),
)  # fmt: skip

VALID = {
    "out_return_no": OUT_NO,
    "out_order_no": OUT_NO,
    "order_id": ORDER_ID,
    "sub_mchid": MCHID,
    "return_mchid": MCHID,
    "amount": AMOUNT,
    "description": DESCRIPTION,
}
MAYBE_BAD = {
    "out_return_no": st.one_of(near_misses(OUT_NO, 64), NOT_STRINGS),
    "out_order_no": st.one_of(near_misses(OUT_NO, 64), NOT_STRINGS),
    "order_id": st.one_of(near_misses(ORDER_ID, 64), NOT_STRINGS),
    "sub_mchid": st.one_of(near_misses(MCHID, 32), NOT_STRINGS),
    "return_mchid": st.one_of(near_misses(MCHID, 32), NOT_STRINGS),
    "amount": st.one_of(
        st.integers(max_value=0),
        st.integers(min_value=2**63),
        st.booleans(),
        st.floats(),
        st.decimals(allow_nan=False).map(str),
        st.integers(min_value=1, max_value=10**6).map(str),
        st.none(),
    ),
    "description": st.one_of(
        st.just(""),
        st.text(" \t\u3000", min_size=1, max_size=5),
        st.text(min_size=81, max_size=120),
        st.tuples(DESCRIPTION, st.characters(max_codepoint=31), DESCRIPTION).map(
            lambda t: (t[0] + t[1] + t[2])[:80]
        ),
        st.tuples(DESCRIPTION, st.characters(categories=["Cs"])).map(lambda t: t[0][:79] + t[1]),
        st.tuples(DESCRIPTION, INVISIBLE, DESCRIPTION).map(lambda t: (t[0] + t[1] + t[2])[:80]),
        st.text(INVISIBLE, min_size=1, max_size=5),
        NOT_STRINGS,
    ),
}


@st.composite
def create_requests(draw, *, bad_fields: bool):
    """A whole create request; ``bad_fields`` mixes possibly-invalid values into it.

    The order is identified by exactly one of ``order_id``/``out_order_no`` unless the
    draw decides to give both or neither (an invalid combination).
    """
    ident = draw(st.sampled_from(["out_order_no", "order_id", "both", "neither"]))
    if not bad_fields:
        ident = draw(st.sampled_from(["out_order_no", "order_id"]))
    wanted = ["out_return_no", "return_mchid", "amount", "description"]
    wanted += {"both": ["out_order_no", "order_id"], "neither": []}.get(ident, [ident])
    if draw(st.booleans()):
        wanted.append("sub_mchid")
    bad = set(draw(st.sets(st.sampled_from(wanted), max_size=3))) if bad_fields else set()
    request = {}
    for name in wanted:
        request[name] = draw(MAYBE_BAD[name] if name in bad else VALID[name])
    return request


def oracle_errors(request: dict, *, absent=(None,), required=REQUIRED_BY_CLIENT) -> set[str]:
    """The fields the documentation says are wrong (``absent`` values mean "not given")."""
    wrong = set()
    for name, check in ORACLE.items():
        value = request.get(name)
        if value in absent:
            if name in required:
                wrong.add(name)
        elif not check(value):
            wrong.add(name)
    if sum(request.get(n) not in absent for n in ("order_id", "out_order_no")) != 1:
        wrong.add("out_order_no")  # exactly one of them identifies the sharing order
    return wrong


@pytest.fixture(scope="module", autouse=True)
def write_counts():
    """Write how many inputs each layer was fed, for the closing note."""
    yield
    if not COUNTS:
        return
    lines = [f"{key}: {COUNTS[key]}" for key in sorted(COUNTS)]
    lines.append(f"total invalid inputs: {sum(v for k, v in COUNTS.items() if 'invalid' in k)}")
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text("\n".join(lines) + "\n", encoding="utf-8")


# ---------------------------------------------------------------- field by field
FIELD_VALIDATORS = {
    "out_return_no": lambda v: validation.validate_out_no(v, "out_return_no"),
    "out_order_no": lambda v: validation.validate_out_no(v, "out_order_no"),
    "order_id": lambda v: validation.validate_order_id(v),
    "sub_mchid": lambda v: validation.validate_mchid(v, "sub_mchid"),
    "return_mchid": lambda v: validation.validate_mchid(v, "return_mchid"),
    "amount": lambda v: validation.validate_amount(v),
    "description": lambda v: validation.validate_description(v),
}


@pytest.mark.parametrize("field", list(FIELD_VALIDATORS))
@settings(max_examples=examples(300), deadline=None)
@given(data=st.data())
def test_each_field_validator_agrees_with_the_documentation(field, data):
    check = FIELD_VALIDATORS[field]
    value = data.draw(st.one_of(VALID[field], MAYBE_BAD[field]), label=field)
    if ORACLE[field](value):
        COUNTS[f"client field validators: valid {field}"] += 1
        assert check(value) == value
    else:
        COUNTS[f"client field validators: invalid {field}"] += 1
        with pytest.raises(errors.InvalidRequest) as info:
            check(value)
        assert info.value.field == field


# ------------------------------------------------------------------- the client
@pytest.fixture(scope="module")
def client_and_sim(simulator):
    """A client on the session simulator (no faults, no rate limit)."""
    simulator.clear_faults()
    simulator.configure(processing_seconds=0, latency_ms=0, qps_limit=0)
    with WeChatPayClient(**simulator.client_kwargs(), timeout=(2, 5)) as client:
        yield client, simulator


def test_client_refuses_bad_requests_before_sending(client_and_sim):
    """Invalid fields or combinations: ``InvalidRequest`` naming a culprit, no call made.

    Checked twice: per example by the client's own call hook, and once at the end by
    the simulator's own call log, which must not have grown by a single call.
    """
    client, sim = client_and_sim
    before = len(sim.calls())
    made = []

    @settings(max_examples=examples(400), deadline=None)
    @given(request=create_requests(bad_fields=True))
    def refused(request):
        wrong = oracle_errors(request)
        if not wrong:
            return  # valid: the next test's business
        COUNTS["client create_return: invalid requests"] += 1
        with pytest.raises(errors.InvalidRequest) as info:
            client.create_return(ReturnRequest(**request), on_call=made.append)
        assert info.value.field in wrong, (info.value.field, wrong)
        assert made == [], "an invalid request was sent"

    refused()
    assert len(sim.calls()) == before


def test_client_sends_every_valid_request(client_and_sim):
    """Valid fields pass, are sent once, and WeChat does not call them malformed.

    The order does not exist at the simulator, so the answer is a business refusal
    (404 RESOURCE_NOT_EXISTS), never PARAM_ERROR: both sides agree on the formats.
    """
    client, _ = client_and_sim

    @settings(max_examples=examples(150), deadline=None)
    @given(request=create_requests(bad_fields=False))
    def sent(request):
        COUNTS["client create_return: valid requests"] += 1
        made = []
        with pytest.raises(errors.APIError) as info:
            client.create_return(ReturnRequest(**request), on_call=made.append)
        assert len(made) == 1
        assert info.value.code != "PARAM_ERROR", (info.value.message, info.value.detail)

    sent()


# ------------------------------------------------------------- the service layer
@settings(max_examples=examples(400), deadline=None)
@given(request=create_requests(bad_fields=True))
def test_validate_return_fields_reports_every_bad_field(request):
    """All wrong fields at once, each under its own name; "" counts as not given."""
    wrong = oracle_errors(request, absent=(None, ""), required=REQUIRED_BY_SERVICE)
    kwargs = {"return_mchid": None, "amount": None, "description": None, **request}
    if wrong:
        COUNTS["services.validate_return_fields: invalid requests"] += 1
        with pytest.raises(ValidationError) as info:
            services.validate_return_fields(kwargs)
        assert set(info.value.message_dict) == wrong
    else:
        COUNTS["services.validate_return_fields: valid requests"] += 1
        cleaned = services.validate_return_fields(kwargs)
        for name, value in request.items():
            if name == "out_return_no" and value in (None, ""):
                assert cleaned.out_return_no  # a fresh number was made
                continue
            assert getattr(cleaned, name) == (value if value not in (None, "") else None)


# ------------------------------------------------------------------ the REST API
OPTIONAL_IDS = ("out_return_no", "sub_mchid", "order_id", "out_order_no")


def drf_coerced(name: str, value):
    """``(ok, value)`` as the API's strict fields see a JSON value (issue 12.12).

    Text fields take JSON strings only (trimmed, as DRF's ``CharField`` does); the
    amount takes a JSON integer only: no float, no text, no boolean.
    """
    if name == "amount":
        return (True, value) if type(value) is int else (False, None)
    if not isinstance(value, str):
        return False, None
    return True, value.strip()


def serializer_errors(payload: dict) -> set[str]:
    wrong, present = set(), {}
    for name, value in payload.items():
        ok, value = drf_coerced(name, value)
        if not ok:
            wrong.add(name)
        elif not (value == "" and name in OPTIONAL_IDS):
            present[name] = value
    for name in set(present) - wrong:
        if not ORACLE[name](present[name]):
            wrong.add(name)
    wrong |= REQUIRED_BY_SERVICE - set(payload)
    given_ids = {"order_id", "out_order_no"} & (set(present) | (wrong & set(payload)))
    if len(given_ids) != 1:
        wrong.add("out_order_no")  # both or neither: the combination is refused too
    return wrong


@settings(max_examples=examples(400), deadline=None)
@given(request=create_requests(bad_fields=True))
def test_api_serializer_refuses_bad_input_with_field_errors(request):
    """The create serializer answers field errors, under the culprits' names only."""
    from django_wxpay_profitsharing.api.serializers import ProfitSharingReturnSerializer

    try:
        payload = json.loads(json.dumps(request, allow_nan=False))  # what JSON can carry
    except (TypeError, ValueError):
        assume(False)
    wrong = serializer_errors(payload)
    serializer = ProfitSharingReturnSerializer(data=payload)
    if wrong:
        COUNTS["API create serializer: invalid requests"] += 1
        assert not serializer.is_valid()
        errors_by_field = set(serializer.errors) - {"non_field_errors"}
        assert errors_by_field and errors_by_field <= wrong, (payload, serializer.errors, wrong)
    else:
        COUNTS["API create serializer: valid requests"] += 1
        assert serializer.is_valid(), serializer.errors


def test_trailing_newline_is_refused_everywhere():
    """The example hypothesis found first: ``^...$`` lets ``"R1\\n"`` through."""
    for check in (validation.validate_out_no, validation.validate_mchid):
        with pytest.raises(errors.InvalidRequest):
            check("1900000109\n")
    with pytest.raises(errors.InvalidRequest):
        validation.validate_order_id("4208450740201411110007820472\n")


def test_unencodable_description_is_refused():
    """A lone surrogate passes a length check but cannot be sent as UTF-8 JSON."""
    with pytest.raises(errors.InvalidRequest) as info:
        validation.validate_description("退款\ud800")
    assert info.value.field == "description"


def _sample_ok():
    return {
        "out_return_no": "R1",
        "out_order_no": "P1",
        "return_mchid": RECEIVER,
        "sub_mchid": SUB_MCHID,
        "amount": 1,
        "description": "x",
    }


def test_oracle_accepts_the_documented_example():
    """Guards the oracle itself: the documentation's own example body is valid."""
    assert oracle_errors(_sample_ok()) == set()
    assert re.fullmatch(r"[0-9]+", SUB_MCHID)


# ------------------------------------------------------- the REST API's list filters
TIMESTAMPS = st.builds(
    "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}{}{:02d}:{:02d}".format,
    st.integers(1, 9999),
    st.integers(1, 12),
    st.integers(1, 28),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
    st.sampled_from("+-"),
    st.integers(0, 23),
    st.integers(0, 59),
)
FILTER_VALUES = st.one_of(TIMESTAMPS, st.text(max_size=20), st.just("\x00"))


FILTER_NAMES = ["created_after", "created_before", "state", "sub_mchid", "out_order_no"]
FILTER_NAMES += ["return_mchid", "cursor", "page_size"]


@pytest.mark.django_db
@settings(max_examples=examples(200), deadline=None)
@given(params=st.dictionaries(st.sampled_from(FILTER_NAMES), FILTER_VALUES, max_size=4))
@example(params={"created_after": "0001-01-01T00:00:00+01:00"})  # before year 1 in UTC
@example(params={"created_before": "5091-06-09T12:53:24-16:46"})  # PostgreSQL: +-15:59
@example(params={"sub_mchid": "\x00"})  # PostgreSQL text cannot hold NUL
def test_api_list_filters_answer_200_or_400(params):
    """Any query string is a result or a 400 naming the parameter, never a 500.

    Dates far in the past with an offset, offsets beyond PostgreSQL's +-15:59 and NUL
    characters are the values that reach the database and break there.
    """
    from django.contrib.auth.models import User
    from rest_framework.test import APIClient

    user = User.objects.filter(username="filters").first() or User.objects.create_superuser(
        "filters", "f@example.com", "pw"
    )
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(user)
    response = client.get("/api/wxpay/returns/", params)
    valid = not set(params) & {"created_after", "created_before", "state", "cursor"}
    COUNTS[f"API list filters: {'valid' if valid else 'invalid'} query strings"] += 1
    assert response.status_code in (200, 400, 404), (params, response.status_code)
    if response.status_code != 200:
        assert set(response.json()) & (set(params) | {"detail"}), response.json()
