"""Security: who may act, what never leaks, where the client talks, which answers it trusts.

Why these tests exist beside the functional ones: each item below is a way to lose
money or credentials that no functional test notices, because everything "works":

- an anonymous or under-privileged user who can list, create, submit or refresh
  returns through the API or the admin;
- a private key, APIv3 key, Authorization header or signature written to a log, a
  call record, an error message or an admin page, where support staff, log
  shippers and screenshots carry it on;
- a client that talks plain HTTP to a remote host (a typo in ``BASE_URL``);
- a client that believes an old or replayed answer ("PROCESSING" replayed after
  the return failed, a stale "SUCCESS" for a retried number).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_wxpay_profitsharing import polling, services
from django_wxpay_profitsharing.clients import build_client, get_client, reset_client
from django_wxpay_profitsharing.models import (
    ProfitSharingClawback,
    ProfitSharingReturn,
    ProfitSharingReturnCall,
    ReturnState,
)
from django_wxpay_profitsharing.wechatpay import WeChatPayClient, crypto, errors
from django_wxpay_profitsharing.wechatpay.models import ReturnRequest
from wxpay_simulator.__main__ import parse_args

from .conftest import RECEIVER, SUB_MCHID, wxpay_config
from .conftest import pending_return as pending_row

# ----------------------------------------------------------------- plain HTTP
KEYS_ONLY = {"timeout": (1, 1)}


def client_for(sim, base_url, **extra):
    kwargs = {**sim.client_kwargs(), **KEYS_ONLY, "base_url": base_url, **extra}
    return WeChatPayClient(**kwargs)


@pytest.mark.parametrize(
    "base_url",
    [
        "http://api.mch.weixin.qq.com",
        "http://10.0.0.8:8765",
        "http://192.168.1.20",
        "http://127.0.0.1.evil.example",  # looks like loopback, is a remote name
        "http://localhost.evil.example",
        "ftp://127.0.0.1",
        "api.mch.weixin.qq.com",
    ],
)
def test_client_refuses_plain_http_to_remote_hosts(simulator, base_url):
    with pytest.raises(ValueError, match="https"):
        client_for(simulator, base_url)


@pytest.mark.parametrize(
    "base_url",
    [
        "https://api.mch.weixin.qq.com",
        "http://127.0.0.1:8765",
        "http://127.5.6.7",
        "http://localhost:8765",
        "http://[::1]:8765",
    ],
)
def test_client_allows_https_and_loopback(simproc, base_url):
    client_for(simproc, base_url).close()


def test_plain_http_to_a_remote_host_only_when_explicitly_allowed(simproc):
    client_for(simproc, "http://10.0.0.8", allow_insecure_http=True).close()


@pytest.mark.real_simulator  # the client builds its socket transport for another host
def test_settings_with_plain_http_are_improperly_configured(sim):
    remote = wxpay_config(sim, BASE_URL="http://api.mch.weixin.qq.com")
    with override_settings(WXPAY_PROFITSHARING=remote), pytest.raises(ImproperlyConfigured):
        build_client()
    allowed = {**remote, "ALLOW_INSECURE_HTTP": True}
    with override_settings(WXPAY_PROFITSHARING=allowed):
        build_client().close()


def test_simulator_binds_loopback_by_default(simproc, tmp_path):
    """The simulator has an unsigned control surface: never on a public interface."""
    assert parse_args(["--state-dir", str(tmp_path)]).host == "127.0.0.1"
    assert simproc.base_url.startswith("http://127.0.0.1:")


# --------------------------------------------------- stale and replayed answers
class StubWeChat:
    """A tiny HTTP server answering every request with a given (signed) response.

    Used to replay an answer the simulator really signed, or to serve one signed
    with WeChat's key and a chosen timestamp: the attacks a network can mount.
    """

    def __init__(self) -> None:
        self.response: tuple[int, dict, bytes] = (500, {}, b"")
        self.requests = 0
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                return

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                stub.requests += 1
                status, headers, body = stub.response
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in ("content-length", "connection", "date", "server"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub():
    server = StubWeChat()
    yield server
    server.close()


def record_exchanges(client, sink) -> None:
    """Pass every (request headers, raw response) of ``client`` to ``sink``."""
    send = client.transport.send

    def recording(method, target, headers, body):
        response = send(method, target, headers, body)
        sink(headers, response)
        return response

    client.transport.send = recording


def capture_signed_answer(sim, order) -> tuple[int, dict, bytes]:
    """Create a return at the simulator and keep its signed answer, byte for byte."""
    captured = []
    with client_for(sim, sim.base_url) as client:
        record_exchanges(client, lambda headers, response: captured.append(response))
        client.create_return(
            ReturnRequest(
                out_return_no=f"RSEC{time.time_ns()}",
                out_order_no=order["out_order_no"],
                sub_mchid=SUB_MCHID,
                return_mchid=RECEIVER,
                amount=10,
                description="replay me",
            )
        )
    response = captured[-1]
    return response.status, dict(response.headers), response.body


def query(client):
    return client.query_return(out_return_no="R1", out_order_no="P1", sub_mchid=SUB_MCHID)


@pytest.mark.real_simulator  # the stub is a real server: the client needs its sockets
def test_replayed_answer_after_the_window_is_refused(sim, order, stub):
    """The same signed bytes pass now and are refused 301 s later (5-minute window)."""
    stub.response = capture_signed_answer(sim, order)
    with client_for(sim, stub.base_url) as fresh:
        assert query(fresh).result == "SUCCESS"  # genuine and fresh: accepted
    later = client_for(sim, stub.base_url, clock=lambda: time.time() + 301)
    with later, pytest.raises(errors.SignatureError, match="window"):
        query(later)


@pytest.mark.real_simulator
def test_replayed_answer_within_the_window_is_refused(sim, order, stub):
    """A nonce seen before is a replay even inside the window."""
    stub.response = capture_signed_answer(sim, order)
    with client_for(sim, stub.base_url) as client:
        query(client)
        with pytest.raises(errors.SignatureError):
            query(client)


def sign_as_wechat(sim, body: bytes, timestamp: int) -> dict:
    key = crypto.load_private_key(Path(sim.state_dir) / "simulator_public_key_private.pem")
    nonce = crypto.make_nonce()
    return {
        "Content-Type": "application/json",
        "Request-ID": "STUB",
        "Wechatpay-Timestamp": str(timestamp),
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Serial": sim.credentials["wechatpay_public_key_id"],
        "Wechatpay-Signature": crypto.sign(key, crypto.response_message(timestamp, nonce, body)),
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
    }


@pytest.mark.parametrize(
    ("skew", "accepted"), [(-305, False), (305, False), (-280, True), (280, True)]
)
@pytest.mark.real_simulator
def test_answer_signed_with_a_stale_or_future_timestamp(sim, stub, skew, accepted):
    """Signed with WeChat's real key, only the timestamp wrong: refused outside 300 s."""
    body = json.dumps(
        {
            "sub_mchid": SUB_MCHID,
            "order_id": "4208450740201411110007820472",
            "out_order_no": "P1",
            "out_return_no": "R1",
            "return_id": "3008450740201411110007820472",
            "return_mchid": RECEIVER,
            "amount": 10,
            "description": "stale",
            "result": "SUCCESS",
            "create_time": "2025-05-20T13:29:35+08:00",
            "finish_time": "2025-05-20T13:29:35+08:00",
        }
    ).encode()
    stub.response = (200, sign_as_wechat(sim, body, int(time.time()) + skew), body)
    with client_for(sim, stub.base_url) as client:
        if accepted:
            assert query(client).result == "SUCCESS"
        else:
            with pytest.raises(errors.SignatureError, match="window"):
                query(client)


@pytest.mark.real_simulator
@pytest.mark.django_db(transaction=True)
def test_service_does_not_act_on_a_replayed_answer(sim, order, stub, signal_log):
    """A stale replayed SUCCESS leaves the return pending; the truth is asked later."""
    stub.response = capture_signed_answer(sim, order)
    config = wxpay_config(sim, BASE_URL=stub.base_url, TIMEOUT=(1, 1))
    with override_settings(WXPAY_PROFITSHARING=config):
        get_client().verifier.clock = lambda: time.time() + 301  # the answer is 301 s old
        row = services.create_return(
            sub_mchid=SUB_MCHID,
            out_order_no=order["out_order_no"],
            return_mchid=RECEIVER,
            amount=10,
            description="replay me",
            submit=True,
        )
        row = services.submit(row)
    reset_client()
    assert row.state == ReturnState.PENDING
    assert row.last_error_code == "SIGNATURE_ERROR"
    assert row.return_id == "" and row.response_json is None
    assert signal_log.events == []


# ------------------------------------------------------ secrets never written down
def secrets_of(sim) -> dict[str, str]:
    """What must never appear: key PEM body lines, the APIv3 key, auth header markers."""
    pem = Path(sim.credentials["private_key_path"]).read_text()
    body_lines = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    found = {f"private key line {i}": line for i, line in enumerate(body_lines)}
    found["APIv3 key"] = sim.credentials["apiv3_key"]
    # The header's name where a header is written ("Authorization: ...", a dict's
    # 'Authorization': ...), not the admin's "Authentication and Authorization" app.
    found["Authorization header"] = re.compile(r"""Authorization['"]?\s*[:=,]""")
    found["auth scheme"] = crypto.AUTH_SCHEME
    return found


def find(text: str, secret) -> int:
    """Where ``secret`` (a string or a compiled pattern) is in ``text``, or -1."""
    if isinstance(secret, re.Pattern):
        match = secret.search(text)
        return match.start() if match else -1
    return text.find(secret) if secret else -1


def leaks(text: str, secrets: dict) -> list[str]:
    return [name for name, value in secrets.items() if find(text, value) >= 0]


class SignatureRecorder:
    """Keeps every request and response signature that crossed the wire."""

    def __init__(self) -> None:
        self.values: set[str] = set()

    def __call__(self, request_headers, response):
        auth = request_headers.get("Authorization", "")
        match = re.search(r'signature="([^"]+)"', auth)
        if match:
            self.values.add(match.group(1))
        if response.headers.get("wechatpay-signature"):
            self.values.add(response.headers["wechatpay-signature"])


@pytest.mark.real_simulator  # the transport's own logs are scanned too
@pytest.mark.django_db(transaction=True)
def test_debug_logs_call_records_and_errors_hold_no_secret(sim, order, caplog, signal_log):
    """The whole flow with DEBUG logging everywhere, faults included, searched for secrets.

    Searched: every log record (and its attributes), the call records, the rows'
    error messages and stored answers, the client's exceptions and repr, a
    misconfiguration error, and the admin and API pages an operator would open.
    """
    caplog.set_level(logging.DEBUG)
    for name in ("django_wxpay_profitsharing", "django_wxpay_profitsharing.wechatpay"):
        caplog.set_level(logging.DEBUG, logger=name)
    caplog.set_level(logging.DEBUG, logger="urllib3")
    signatures = SignatureRecorder()
    texts: list[str] = []
    config = wxpay_config(sim, TIMEOUT=(1, 1))
    with override_settings(WXPAY_PROFITSHARING=config):
        record_exchanges(get_client(), signatures)
        texts.append(repr(get_client()))
        sim.configure(processing_seconds=0.2)
        rows = [
            services.create_return(
                sub_mchid=SUB_MCHID,
                out_order_no=order["out_order_no"],
                return_mchid=RECEIVER,
                amount=amount,
                description="secret scan",
                submit=True,
            )
            for amount in (100, 200, 300, 900)  # the last one exceeds what is left
        ]
        for fault in ("bad_signature", "http_500", "stale_timestamp", "reset"):
            sim.set_fault(fault, count=1)
            services.submit(rows[0])
        for row in rows:
            services.submit(row)
        sim.advance_clock(0.25)
        sim.set_fault("bad_signature", endpoint="query", count=1)
        for row in rows:
            services.refresh(row)
        polling.process_due()
        # Errors a caller sees: the client's own exceptions, a misconfiguration.
        client = get_client()
        for bad in (
            lambda: client.create_return(
                ReturnRequest(
                    out_return_no="R 1",
                    return_mchid="1",
                    amount=1,
                    description="x",
                    out_order_no="P",
                )
            ),
            lambda: client.query_return(out_return_no="RNONE", out_order_no="PNONE"),
        ):
            with pytest.raises(errors.WeChatPayError) as info:
                bad()
            texts += [str(info.value), repr(info.value)]
        # What an operator sees: the changelist, each change page (calls inline), the
        # confirmation page of the submit action, and the API's answers.
        from django.contrib.auth.models import User
        from django.test import Client

        admin = Client()
        admin.force_login(User.objects.create_superuser("root", "r@example.com", "pw"))
        pages = [admin.get(ADMIN), admin.get(f"{ADMIN}?q=R"), admin.get(API)]
        pages += [admin.get(f"{ADMIN}{row.pk}/change/") for row in rows]
        pages += [admin.get(f"{API}{row.pk}/") for row in rows]
        selection = {"action": "submit_to_wechat_pay", "_selected_action": [r.pk for r in rows]}
        pages.append(admin.post(ADMIN, selection))
        assert all(page.status_code == 200 for page in pages)
        texts += [page.content.decode() for page in pages]
    broken = {**config, "PRIVATE_KEY": Path(config["PRIVATE_KEY"]).read_text()[:-40]}
    with override_settings(WXPAY_PROFITSHARING=broken):
        with pytest.raises(ImproperlyConfigured) as info:
            build_client()
        texts.append(str(info.value))
    reset_client()

    assert signatures.values, "the recorder saw no signature: the scan would prove nothing"
    secrets = secrets_of(sim)
    secrets.update({f"signature {i}": s for i, s in enumerate(sorted(signatures.values))})
    texts.append(caplog.text)
    texts += [repr(record.__dict__) for record in caplog.records]
    for row in ProfitSharingReturn.objects.all():
        texts += [row.last_error_message, json.dumps(row.response_json), repr(row)]
    for call in ProfitSharingReturnCall.objects.all():
        texts.append(json.dumps({f.name: str(getattr(call, f.attname)) for f in call._meta.fields}))
    assert len(caplog.records) > 10
    assert ProfitSharingReturnCall.objects.count() >= 8
    found = {
        name: text[max(0, find(text, secrets[name]) - 80) : find(text, secrets[name]) + 80]
        for text in texts
        for name in leaks(text, secrets)
    }
    assert not found, f"secrets written down: {found}"


def test_secret_scan_finds_what_it_looks_for(sim):
    """Guards the scan above: a leaked key line or header would be found."""
    secrets = secrets_of(sim)
    pem = Path(sim.credentials["private_key_path"]).read_text()
    assert leaks(f"oops {pem.splitlines()[3]} oops", secrets)
    assert leaks(f'Authorization: {crypto.AUTH_SCHEME} mchid="1"', secrets)
    assert leaks("{'Authorization': 'x'}", secrets) == ["Authorization header"]
    assert leaks("Authentication and Authorization", secrets) == []
    assert leaks(sim.credentials["apiv3_key"], secrets) == ["APIv3 key"]


@pytest.mark.django_db(transaction=True)
def test_refused_answer_is_recorded_as_a_signature_error(configured, order):
    """The audit trail must not call an answer that failed verification "ok"."""
    configured.set_fault("bad_signature", endpoint="create", count=1)
    row = services.submit(
        services.create_return(
            sub_mchid=SUB_MCHID,
            out_order_no=order["out_order_no"],
            return_mchid=RECEIVER,
            amount=10,
            description="audit",
            submit=True,
        )
    )
    assert row.last_error_code == "SIGNATURE_ERROR"
    assert [c.outcome for c in row.calls.all()] == ["signature_error"]


# ------------------------------------------------------ who may act: the API
API = "/api/wxpay/returns/"
BY_NUMBER = f"{API}by-out-return-no/"
PERMS = {
    "anonymous": None,
    "no permission": [],
    "viewer": ["view"],
    "creator": ["view", "add"],
    "submitter": ["view", "submit"],
    "refresher": ["view", "refresh"],
    # issue 13: "model:perm" names a permission on the clawback or sharing order model
    "clawback creator": ["clawback:view", "clawback:add"],
    "clawback submitter": ["clawback:view", "clawback:submit", "submit"],
    "order viewer": ["order:view"],
    "order syncer": ["order:add"],
}
MODELS = {"": "profitsharingreturn", "clawback": "profitsharingclawback",
          "order": "profitsharingorder"}  # fmt: skip
# route -> the one permission that allows it (besides the superuser)
ROUTES = {
    "list": "view",
    "retrieve": "view",
    "create": "add",
    "submit": "submit",
    "refresh": "refresh",
    "bulk-submit": "submit",
    # the same return by its out_return_no: the same permissions (issue 12.1)
    "retrieve by number": "view",
    "submit by number": "submit",
    "refresh by number": "refresh",
    # issue 13: retry now, claw back again (a pending return: 409 and 400 once allowed)
    "retry": "submit",
    "retry by number": "submit",
    "claw back again": "add",
    "claw back again by number": "add",
    "clawback list": "clawback:view",
    "clawback retrieve": "clawback:view",
    "clawback create": "clawback:add",
    "clawback submit": "clawback:submit",
    "order list": "order:view",
    "order sync": "order:add",
}
#: What an allowed route may answer besides success: the route speaking, not a permission.
ALLOWED_REFUSALS = {"retry": 409, "retry by number": 409, "claw back again": 400,
                    "claw back again by number": 400}  # fmt: skip
CLAWBACKS = "/api/wxpay/clawbacks/"
ORDERS = "/api/wxpay/orders/"


def codename(permission: str) -> str:
    model, _, action = permission.rpartition(":")
    return f"{action}_{MODELS[model]}"


def make_user(name: str, perms: list[str] | None, *, staff: bool = False):
    from django.contrib.auth.models import Permission, User

    user = User.objects.create_user(name.replace(" ", "_"), password="pw", is_staff=staff)
    codenames = [codename(p) for p in perms or []]
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return User.objects.get(pk=user.pk)  # no stale permission cache


def api_call(client, route: str, row, order, clawback=None):
    other = {"out_order_no": clawback.order.out_order_no, "sub_mchid": SUB_MCHID,
             "transaction_id": clawback.order.transaction_id} if clawback else {}  # fmt: skip
    new_clawback = {**other, "out_clawback_no": f"CS{row.pk}", "amount": 1,
                    "description": "security"}  # fmt: skip
    body = {
        "sub_mchid": SUB_MCHID,
        "out_order_no": order["out_order_no"],
        "return_mchid": RECEIVER,
        "amount": 10,
        "description": "security",
    }
    return {
        "list": lambda: client.get(API),
        "retrieve": lambda: client.get(f"{API}{row.pk}/"),
        "create": lambda: client.post(API, body, format="json"),
        "submit": lambda: client.post(f"{API}{row.pk}/submit/", content_type="application/json"),
        "refresh": lambda: client.post(f"{API}{row.pk}/refresh/", content_type="application/json"),
        "bulk-submit": lambda: client.post(f"{API}bulk-submit/", {"ids": [row.pk]}, format="json"),
        "retrieve by number": lambda: client.get(f"{BY_NUMBER}{row.out_return_no}/"),
        "submit by number": lambda: client.post(
            f"{BY_NUMBER}{row.out_return_no}/submit/", content_type="application/json"
        ),
        "refresh by number": lambda: client.post(
            f"{BY_NUMBER}{row.out_return_no}/refresh/", content_type="application/json"
        ),
        "retry": lambda: client.post(f"{API}{row.pk}/retry/", content_type="application/json"),
        "retry by number": lambda: client.post(
            f"{BY_NUMBER}{row.out_return_no}/retry/", content_type="application/json"
        ),
        "claw back again": lambda: client.post(
            f"{API}{row.pk}/claw-back-again/", content_type="application/json"
        ),
        "claw back again by number": lambda: client.post(
            f"{BY_NUMBER}{row.out_return_no}/claw-back-again/", content_type="application/json"
        ),
        "clawback list": lambda: client.get(CLAWBACKS),
        "clawback retrieve": lambda: client.get(f"{CLAWBACKS}{clawback.pk}/"),
        "clawback create": lambda: client.post(CLAWBACKS, new_clawback, format="json"),
        "clawback submit": lambda: client.post(
            f"{CLAWBACKS}{clawback.pk}/submit/", content_type="application/json"
        ),
        "order list": lambda: client.get(ORDERS, {"out_order_no": other["out_order_no"]}),
        "order sync": lambda: client.post(
            f"{ORDERS}sync/",
            {k: other[k] for k in ("out_order_no", "transaction_id", "sub_mchid")},
            format="json",
        ),
    }[route]()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("who", list(PERMS))
def test_api_routes_need_their_permission(configured, order, who):
    """Each route for each kind of user: refused without leaving a trace, or allowed."""
    from rest_framework.test import APIClient

    from django_wxpay_profitsharing import clawbacks

    sim = configured
    user = make_user(who, PERMS[who]) if PERMS[who] is not None else None
    # A clawback (drafts) on another order, so that `order` keeps no mirror to refuse by.
    other = sim.seed_order(f"{order['out_order_no']}C", sub_mchid=SUB_MCHID, amount=10**6)
    clawback, _created = clawbacks.create_or_get_clawback(
        {"out_clawback_no": "CSEC", "out_order_no": other["out_order_no"], "amount": 10,
         "transaction_id": other["transaction_id"], "sub_mchid": SUB_MCHID,
         "description": "security"},
    )  # fmt: skip
    for route, needed in ROUTES.items():
        row = pending_row(order)
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        rows_before, calls_before = ProfitSharingReturn.objects.count(), len(sim.calls())
        clawbacks_before = ProfitSharingClawback.objects.count()
        response = api_call(client, route, row, order, clawback)
        allowed = user is not None and needed in PERMS[who]
        if allowed:
            expected_ok = (200, 201, 202, ALLOWED_REFUSALS.get(route))
            assert response.status_code in expected_ok, (who, route, response.data)
            continue
        expected = (401, 403) if user is None else (403,)
        assert response.status_code in expected, (who, route, response.status_code)
        assert ProfitSharingReturn.objects.count() == rows_before, (who, route)
        assert ProfitSharingClawback.objects.count() == clawbacks_before, (who, route)
        assert len(sim.calls()) == calls_before, f"{who} made WeChat calls via {route}"
        row.refresh_from_db()
        assert (row.state, row.attempts) == (ReturnState.PENDING, 0), (who, route)


@pytest.mark.django_db
def test_api_basic_auth_with_a_wrong_password_is_refused(sim):
    from rest_framework.test import APIClient

    make_user("viewer", ["view"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Basic dmlld2VyOndyb25n")  # viewer:wrong
    assert client.get(API).status_code in (401, 403)
    client.credentials(HTTP_AUTHORIZATION="Basic dmlld2VyOnB3")  # viewer:pw
    assert client.get(API).status_code == 200


# ---------------------------------------------------- who may act: the admin
ADMIN = "/admin/wxpay_profitsharing/profitsharingreturn/"
ACTIONS = {"submit_to_wechat_pay": "submit", "refresh_from_wechat_pay": "refresh"}


def admin_client(who: str):
    from django.test import Client

    client = Client()
    if who == "anonymous":
        return client, None
    user = make_user(who, PERMS.get(who, []), staff=who != "no permission")
    client.force_login(user)
    return client, user


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("who", ["anonymous", "no permission", "staff, no permission", "viewer"])
def test_admin_pages_need_their_permission(configured, order, who):
    client, _user = admin_client(who)
    row = pending_row(order)
    pages = {"changelist": ADMIN, "change": f"{ADMIN}{row.pk}/change/", "add": f"{ADMIN}add/"}
    for page, url in pages.items():
        response = client.get(url)
        if who in ("anonymous", "no permission"):  # not staff: to the login page
            assert response.status_code == 302 and "/login/" in response["Location"]
        elif who == "viewer" and page != "add":
            assert response.status_code == 200, page
        else:
            assert response.status_code == 403, (who, page)
    posted = client.post(
        f"{ADMIN}add/",
        {
            "sub_mchid": SUB_MCHID,
            "out_order_no": order["out_order_no"],
            "return_mchid": RECEIVER,
            "amount_yuan": "0.10",
            "description": "sneaky",
        },
    )
    assert posted.status_code in (302, 403)
    assert ProfitSharingReturn.objects.count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("action", list(ACTIONS))
@pytest.mark.parametrize("who", ["viewer", "creator", "submitter", "refresher"])
def test_admin_actions_need_their_permission(configured, order, who, action):
    """An action is run (confirmation included) only with its permission."""
    sim = configured
    client, _user = admin_client(who)
    row = pending_row(order)
    if action == "refresh_from_wechat_pay":  # a processing return, the one refresh acts on
        sim.configure(processing_seconds=60)
        row = services.submit(row)
        assert row.state == ReturnState.PROCESSING
    before_calls, before = len(sim.calls()), (row.state, row.attempts)
    selection = {"action": action, "_selected_action": [row.pk], "index": 0}
    client.post(ADMIN, selection)
    response = client.post(ADMIN, {**selection, "post": "yes"})
    row.refresh_from_db()
    if ACTIONS[action] in PERMS[who]:
        assert len(sim.calls()) > before_calls, (who, action)
        return
    assert response.status_code in (200, 302, 403)
    assert len(sim.calls()) == before_calls, f"{who} reached WeChat through {action}"
    assert (row.state, row.attempts) == before
    changelist = client.get(ADMIN)
    if changelist.status_code == 200:
        assert action not in changelist.content.decode()


# ------------------------------------------- error pages and reports (DEBUG or not)
class ExplodingTransport:
    """A transport with a bug: it raises (not a TransportError) from inside ``send``.

    ``seen`` keeps the Authorization headers it was given, to search the pages for.
    """

    seen: list[str] = []

    def __init__(self, base_url: str = "", **options) -> None:
        self.base_url = base_url

    def send(self, method, target, headers, body):
        ExplodingTransport.seen.append(headers["Authorization"])
        raise RuntimeError("transport bug")

    def close(self) -> None:
        pass


def exploding_transport(base_url: str, **options) -> ExplodingTransport:
    """A TRANSPORT factory (import string) making :class:`ExplodingTransport`."""
    return ExplodingTransport(base_url)


def exploding_transport_factory(base_url: str, **options):
    """A transport factory with a bug: the client's construction raises."""
    raise RuntimeError("transport factory bug")


def _caught(call) -> tuple:
    """``sys.exc_info()`` of ``call()``; this frame holds no secret of its own."""
    import sys

    try:
        call()
    except RuntimeError:
        return sys.exc_info()
    raise AssertionError("nothing was raised")


def _inside_the_exchange(sim, monkeypatch) -> tuple:
    client = WeChatPayClient(**{**sim.client_kwargs(), "transport": ExplodingTransport()})
    return _caught(
        lambda: client.create_return(
            ReturnRequest(
                out_return_no="R500",
                return_mchid=RECEIVER,
                amount=1,
                description="bug",
                out_order_no="P500",
                sub_mchid=SUB_MCHID,
            )
        )
    )


def _inside_key_loading(sim, monkeypatch) -> tuple:
    """A bug in the PEM parser while ``build_client`` loads a key given as PEM text."""

    def parser_bug(data, password=None):
        raise RuntimeError("key loader bug")

    monkeypatch.setattr(crypto.serialization, "load_pem_private_key", parser_bug)
    pem = Path(sim.credentials["private_key_path"]).read_text()
    with override_settings(WXPAY_PROFITSHARING=wxpay_config(sim, PRIVATE_KEY=pem)):
        return _caught(build_client)


def _inside_build_client(sim, monkeypatch) -> tuple:
    """A bug in the transport factory while ``build_client`` holds every secret."""
    factory = f"{__name__}.exploding_transport_factory"
    config = wxpay_config(sim, TRANSPORT=factory)
    with override_settings(WXPAY_PROFITSHARING=config):
        return _caught(build_client)


def page_secrets(sim) -> dict:
    secrets = {k: v for k, v in secrets_of(sim).items() if k != "Authorization header"}
    for i, header in enumerate(ExplodingTransport.seen):
        secrets[f"Authorization {i}"] = header
        secrets[f"signature {i}"] = re.search(r'signature="([^"]+)"', header).group(1)
    return secrets


def error_page_and_report(exc_info, *, debug: bool, app_filter: bool) -> str:
    """The technical 500 page and the admins' e-mail body for ``exc_info``, unescaped."""
    import html

    from django.test import RequestFactory
    from django.views.debug import ExceptionReporter, technical_500_response

    from django_wxpay_profitsharing.error_reports import hide_secrets_in_error_reports

    request = RequestFactory().post("/api/wxpay/returns/1/submit/", content_type="application/json")
    if app_filter:
        hide_secrets_in_error_reports(request)
    with override_settings(DEBUG=debug):
        page = technical_500_response(request, *exc_info).content.decode()
        mail = ExceptionReporter(request, *exc_info, is_email=True).get_traceback_text()
    return html.unescape(page) + "\n" + mail


SCENARIOS = {
    "exchange": _inside_the_exchange,
    "key loading": _inside_key_loading,
    "build_client": _inside_build_client,
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize(
    ("debug", "app_filter"), [(False, False), (True, True)], ids=["DEBUG off", "DEBUG on"]
)
def test_error_pages_and_reports_hold_no_secret(sim, monkeypatch, scenario, debug, app_filter):
    """Django's filter (DEBUG off) and this app's (DEBUG on) hide every marked frame."""
    ExplodingTransport.seen.clear()
    exc_info = SCENARIOS[scenario](sim, monkeypatch)
    text = error_page_and_report(exc_info, debug=debug, app_filter=app_filter)
    assert " bug" in text  # the error itself is still reported
    assert "********************" in text  # frames were there, and hidden
    secrets = page_secrets(sim)
    assert not leaks(text, secrets)
    if scenario == "exchange":
        assert ExplodingTransport.seen, "no Authorization header was made: proves nothing"


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        ("exchange", {"auth scheme", "signature 0"}),
        ("key loading", {"private key line 0", "private key line 1"}),
        ("build_client", {"APIv3 key"}),
    ],
)
def test_error_page_scan_finds_what_it_looks_for(sim, monkeypatch, scenario, expected):
    """Guards the test above: with DEBUG on and Django's own filter, the secrets show."""
    ExplodingTransport.seen.clear()
    exc_info = SCENARIOS[scenario](sim, monkeypatch)
    text = error_page_and_report(exc_info, debug=True, app_filter=False)
    assert expected <= set(leaks(text, page_secrets(sim)))


@pytest.mark.django_db(transaction=True)
def test_a_bug_inside_the_exchange_is_recorded_not_a_500(sim, order):
    """Through the real API with DEBUG=True: the bug is the row's error, and no secret shows."""
    import html

    from django.test import Client

    ExplodingTransport.seen.clear()
    row = pending_row(order, amount=10)
    config = wxpay_config(sim, TRANSPORT=f"{__name__}.exploding_transport")
    api = Client(raise_request_exception=False)
    api.force_login(make_user("dev", ["view", "submit"]))
    with override_settings(WXPAY_PROFITSHARING=config, DEBUG=True):
        response = api.post(f"{API}{row.pk}/submit/", content_type="application/json")
    reset_client()
    page = html.unescape(response.content.decode())
    assert response.status_code == 200, page[:500]
    assert ExplodingTransport.seen, "the exchange never started: proves nothing"
    row.refresh_from_db()
    assert row.last_error_code == "CLIENT_ERROR" and row.lease_until is None
    stored = json.dumps([row.last_error_message, row.response_json])
    assert not leaks(page + stored, page_secrets(sim))


def test_the_client_marks_nothing_and_still_signs_without_django(tmp_path):
    """wechatpay/ is a standalone client: without Django the marking is the identity."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['django'] = None\n"
        "from cryptography.hazmat.primitives.asymmetric import rsa\n"
        "from django_wxpay_profitsharing.wechatpay import crypto\n"
        "from django_wxpay_profitsharing.wechatpay.client import WeChatPayClient\n"
        "assert not hasattr(crypto.sign, '__wrapped__')\n"
        "assert not hasattr(WeChatPayClient._send, '__wrapped__')\n"
        "key = rsa.generate_private_key(public_exponent=65537, key_size=2048)\n"
        "assert crypto.verify(key.public_key(), b'm', crypto.sign(key, b'm'))\n"
        "print('ok')\n"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip() == "ok", done.stderr
    from django_wxpay_profitsharing.wechatpay.client import WeChatPayClient as Marked

    assert hasattr(crypto.sign, "__wrapped__") and hasattr(Marked._send, "__wrapped__")


@pytest.mark.django_db(transaction=True)
def test_a_bug_inside_the_exchange_from_the_admin_is_recorded_not_a_500(sim, order):
    """The admin's confirmed "Submit" with DEBUG=True: a message, the row's error, no secret."""
    import html

    from django.contrib.auth.models import User
    from django.test import Client

    ExplodingTransport.seen.clear()
    row = pending_row(order, amount=10)
    config = wxpay_config(sim, TRANSPORT=f"{__name__}.exploding_transport")
    admin = Client(raise_request_exception=False)
    admin.force_login(User.objects.create_superuser("ops", "o@example.com", "pw"))
    selection = {"action": "submit_to_wechat_pay", "_selected_action": [row.pk], "post": "yes"}
    with override_settings(WXPAY_PROFITSHARING=config, DEBUG=True):
        response = admin.post(ADMIN, selection, follow=True)
    reset_client()
    page = html.unescape(response.content.decode())
    assert response.status_code == 200 and "will be retried" in page
    assert ExplodingTransport.seen, "the exchange never started: proves nothing"
    row.refresh_from_db()
    assert row.last_error_code == "CLIENT_ERROR"
    assert not leaks(page, page_secrets(sim))
