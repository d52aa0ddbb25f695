"""What must hold on every database: exact identifiers, times under USE_TZ on or off."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings
from django.urls import reverse

from django_wxpay_profitsharing import checks, dbtime, services
from django_wxpay_profitsharing.fields import MYSQL_BINARY_COLLATION, IdentifierField
from django_wxpay_profitsharing.models import ProfitSharingReturn

from .conftest import ON_MYSQL, RECEIVER, SUB_MCHID
from .test_api_routes import LIST, api_user

pytestmark = pytest.mark.django_db(transaction=True)


def make(number, out_order_no="PCASE1"):
    return services.create_or_get_return(
        sub_mchid=SUB_MCHID,
        out_order_no=out_order_no,
        return_mchid=RECEIVER,
        amount=10,
        description="case",
        out_return_no=number,
    )


def test_identifiers_compare_case_sensitively(configured):
    upper, created_upper = make("RCASE1")
    lower, created_lower = make("rcase1")
    assert created_upper and created_lower and upper.pk != lower.pk
    assert ProfitSharingReturn.objects.filter(out_return_no="rcase1").get().pk == lower.pk
    make("RCASE2", out_order_no="PMY0006")
    client = api_user()
    assert client.get(LIST, {"out_order_no": "pmy0006"}).data["results"] == []
    assert len(client.get(LIST, {"out_order_no": "PMY0006"}).data["results"]) == 1


def test_identifier_columns_ask_mysql_for_a_binary_collation():
    field = ProfitSharingReturn._meta.get_field("out_return_no")
    assert isinstance(field, IdentifierField)
    collation = field.db_parameters(connection).get("collation")
    if connection.vendor == "mysql":
        assert collation == MYSQL_BINARY_COLLATION
    else:
        assert collation is None  # nothing changed elsewhere


@pytest.mark.skipif(not ON_MYSQL, reason="asks a MySQL/MariaDB server")
def test_the_mysql_columns_are_binary():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "
            "DATABASE() AND TABLE_NAME = %s AND COLUMN_NAME = 'out_return_no'",
            [ProfitSharingReturn._meta.db_table],
        )
        assert cursor.fetchone()[0] == MYSQL_BINARY_COLLATION


def test_without_time_zone_tables_a_check_names_the_fix_and_the_admin_still_works(
    admin_client, monkeypatch
):
    monkeypatch.setattr(dbtime, "needs_time_zone_tables", lambda alias="default": True)
    monkeypatch.setattr(checks.databases, "needs_time_zone_tables", lambda alias="default": True)
    probe = ("default", str(settings.TIME_ZONE))
    monkeypatch.setitem(dbtime._probed, probe, False)
    [warning] = checks.check_time_zone_tables(databases=["default"])
    assert warning.id == "wxpay_profitsharing.W003" and "tzinfo_to_sql" in warning.hint
    # The returns' dates are filtered by ranges computed here, never converted by the server.
    changelist = reverse("admin:wxpay_profitsharing_profitsharingreturn_changelist")
    page = admin_client.get(changelist)
    assert page.status_code == 200 and page.context["cl"].date_hierarchy is None
    monkeypatch.setitem(dbtime._probed, probe, True)
    assert checks.check_time_zone_tables(databases=["default"]) == []


def test_wechat_times_are_stored_as_the_project_keeps_time():
    beijing = dt.datetime(2026, 12, 2, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    with override_settings(USE_TZ=True):
        assert dbtime.for_db(beijing) is beijing
    with override_settings(USE_TZ=False, TIME_ZONE="Asia/Shanghai"):
        assert dbtime.for_db(beijing) == dt.datetime(2026, 12, 2, 10, 0)  # local, naive
    with override_settings(USE_TZ=False, TIME_ZONE="UTC"):
        assert dbtime.for_db(beijing) == dt.datetime(2026, 12, 2, 2, 0)
    assert dbtime.for_db(None) is None
