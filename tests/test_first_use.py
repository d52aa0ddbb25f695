"""What a newcomer met on a first use (issue 24): each a regression test.

- the API's URLconf loads without the ``openapi`` extra (drf-spectacular);
- generated ``out_return_no`` values carry Beijing time, not UTC;
- a key path that names no file: check E003/E006 name the setting and say "no such file"
  (with the path, which is no secret), and never echo what might be key material.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings

from django_wxpay_profitsharing.checks import check_settings
from django_wxpay_profitsharing.numbering import generate_out_return_no

from .conftest import wxpay_config

BEIJING = dt.timezone(dt.timedelta(hours=8))
ROOT = Path(__file__).resolve().parent.parent


def test_a_generated_out_return_no_carries_beijing_time():
    before = dt.datetime.now(BEIJING).replace(tzinfo=None)
    number = generate_out_return_no("R")
    after = dt.datetime.now(BEIJING).replace(tzinfo=None)
    stamp = dt.datetime.strptime(number[1:21], "%Y%m%d%H%M%S%f")
    # Eight hours away from UTC: a UTC stamp misses this window by 8 h.
    assert before <= stamp <= after, (number, before, after)


def messages(config: dict, check_id: str) -> list[str]:
    with override_settings(WXPAY_PROFITSHARING=config):
        return [f"{m.msg} {m.hint}" for m in check_settings() if m.id == check_id]


@pytest.mark.parametrize(
    ("key", "check_id", "file_name"),
    [
        ("PRIVATE_KEY", "wxpay_profitsharing.E003", "apiclient_key.pem"),
        ("WECHATPAY_PUBLIC_KEY", "wxpay_profitsharing.E006", "pub_key.pem"),
    ],
)
def test_a_key_path_that_names_no_file_says_no_such_file(sim, tmp_path, key, check_id, file_name):
    """The README's example paths on a machine without them: the setting, the path, why."""
    path = str(tmp_path / "etc" / "wxpay" / file_name)
    (said,) = messages(wxpay_config(sim, **{key: path}), check_id)
    assert said.startswith(f"WXPAY_PROFITSHARING['{key}']"), said
    assert f"no such file: '{path}'" in said, said


def test_a_missing_path_that_might_be_key_material_is_not_echoed(sim):
    """Base64 may start with "/": without a suffix it is described, never shown."""
    body = "/" + "".join(Path(wxpay_config(sim)["PRIVATE_KEY"]).read_text().splitlines()[1:-1])
    (said,) = messages(wxpay_config(sim, PRIVATE_KEY=body), "wxpay_profitsharing.E003")
    assert "no such file" in said and body[:20] not in said, said


def test_the_api_urls_load_without_the_openapi_extra(sim, tmp_path):
    """A plain install (no drf-spectacular): the README's urls.py, check and a request."""
    script = """
import sys
sys.modules["drf_spectacular"] = None  # as if the openapi extra were not installed
import django
django.setup()
from django.core.management import call_command
from django.test import Client
from django.test.utils import setup_test_environment
call_command("migrate", verbosity=0)
call_command("check", "--fail-level", "ERROR")
from django.contrib.auth.models import User
setup_test_environment()
client = Client()
client.force_login(User.objects.create_superuser("a", "a@example.com", "a"))
print(client.get("/api/wxpay/returns/").status_code)
assert not [m for m in sys.modules if m.startswith("drf_spectacular") and sys.modules[m]]
"""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"sqlite://{tmp_path / 'db.sqlite3'}",
        "WXPAY_TEST_CONFIG": json.dumps({k: v for k, v in wxpay_config(sim).items() if v}),
    }
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-1] == "200", result.stdout
