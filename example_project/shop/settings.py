"""Settings of the example shop.

SQLite by default (``.demo/shop.sqlite3`` at the top of the checkout, where ``make demo``
keeps it; ``SHOP_SQLITE_PATH`` moves it); ``DATABASE_URL=postgres://...`` for PostgreSQL.
WeChat Pay is the local simulator: ``make demo`` starts it and points
``WXPAY_SIMULATOR_DIR`` at its state directory (``.demo/simulator``), whose
``credentials.json`` supplies the keys (never the database).
"""

import os
from pathlib import Path

from wxpay_simulator.testing import settings_from_state_dir
from wxpay_simulator.testing.database_url import database_from_url

BASE_DIR = Path(__file__).resolve().parent.parent
#: ``make demo``'s state: removed by ``make clean``, reset by every ``make demo``.
DEMO_DIR = BASE_DIR.parent / ".demo"

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-shop-not-for-production")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc from our own static files, no CDN
    "django_filters",
    "django_wxpay_profitsharing",
    "orders",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "shop.urls"
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
WSGI_APPLICATION = "shop.wsgi.application"


DATABASES = {
    "default": database_from_url(os.environ["DATABASE_URL"])
    if os.environ.get("DATABASE_URL")
    else {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("SHOP_SQLITE_PATH", str(DEMO_DIR / "shop.sqlite3")),
        # The site, the poller and any worker write at once: see README, "SQLite".
        "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = os.environ.get("SHOP_LANGUAGE", "zh-hans")
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.BasicAuthentication",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Example shop: WeChat Pay profit-sharing returns",
    "VERSION": "1.0.0",
    # /api/docs/ works offline and in mainland China: nothing is loaded from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}


#: The simulator's state directory (its keys, its address): ``seed_demo`` seeds it.
SIMULATOR_DIR = Path(os.environ.get("WXPAY_SIMULATOR_DIR", str(DEMO_DIR / "simulator")))


def simulator_settings() -> dict:
    """The WeChat Pay settings, from the simulator's credentials.json when present.

    The waits are a demo's, not production's: a refund job looks again within seconds
    (WeChat Pay's own advice is a minute, then backing off), so that the walkthrough's
    refund reaches the customer while the operator watches.
    """
    if not (SIMULATOR_DIR / "credentials.json").exists():
        return {}
    return {
        **settings_from_state_dir(SIMULATOR_DIR),
        "TASK_BACKEND": "thread",
        "BULK_BACKGROUND_THRESHOLD": 20,
        "RETRY_BACKOFF": (1.0, 30.0),
        "POLL_BACKOFF": (1.0, 30.0),
        "REFUND_POLL_BACKOFF": (1.0, 3.0),
        "REFUND_SPLIT_WAIT": 5.0,
    }


WXPAY_PROFITSHARING = simulator_settings()
LOGGING = {
    "version": 1,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_wxpay_profitsharing": {"handlers": ["console"], "level": "INFO"}},
}
