"""Settings for the test suite: SQLite by default, PostgreSQL or MySQL when DATABASE_URL says."""

import json
import os
import tempfile
from typing import Any

from wxpay_simulator.testing.database_url import database_from_url

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
# WXPAY_TEST_USE_TZ=0 runs the suite as the many projects with USE_TZ = False do.
USE_TZ = os.environ.get("WXPAY_TEST_USE_TZ", "1") != "0"
TIME_ZONE = "Asia/Shanghai"
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
ALLOWED_HOSTS = ["*"]


DATABASES: dict[str, dict[str, Any]] = {
    "default": database_from_url(os.environ["DATABASE_URL"])
    if os.environ.get("DATABASE_URL")
    else {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(tempfile.gettempdir(), f"wxpay-ps-{os.getpid()}.sqlite3"),
        # IMMEDIATE: a transaction takes the write lock when it begins, so two
        # writers wait for each other (up to the timeout) instead of one failing
        # at once with "database is locked" when it upgrades a read lock.
        "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE"},
        # A file, not memory: the crash tests' worker processes open the test database too.
        "TEST": {
            "NAME": os.path.join(tempfile.gettempdir(), f"wxpay-ps-test-{os.getpid()}.sqlite3")
        },
    }
}

# Commits without waiting for the disk (an fsync costs ~3 ms here, and the suite
# commits thousands of times). Safe for tests: the crash tests kill processes, never
# the machine, so what a process committed is seen by every other one.
NO_FSYNC_OPTIONS: dict[str, dict[str, str]] = {
    "django.db.backends.sqlite3": {"init_command": "PRAGMA synchronous=OFF"},
    "django.db.backends.postgresql": {"options": "-c synchronous_commit=off"},
}
_default = DATABASES["default"]
_default["OPTIONS"] = {
    **NO_FSYNC_OPTIONS.get(_default["ENGINE"], {}),
    **_default.get("OPTIONS", {}),
}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_wxpay_profitsharing",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
STATIC_URL = "/static/"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Filled per test by the simulator fixtures (override_settings); empty means "not configured".
WXPAY_PROFITSHARING: dict[str, Any] = json.loads(os.environ.get("WXPAY_TEST_CONFIG", "{}"))
