"""Packaging for django-wxpay-profitsharing (metadata kept declarative)."""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(
    r'__version__ = "([^"]+)"', (HERE / "django_wxpay_profitsharing" / "__init__.py").read_text()
).group(1)

setup(
    name="django-wxpay-profitsharing",
    version=VERSION,
    description="Claw back WeChat Pay profit-sharing money (分账回退) from Django: "
    "models, admin, REST API, signals, Celery tasks and a WeChat Pay simulator.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    packages=find_packages(include=["django_wxpay_profitsharing", "django_wxpay_profitsharing.*"]),
    include_package_data=True,
    zip_safe=False,
    python_requires=">=3.11",
    install_requires=[
        "django>=5.2",  # 5.2 LTS; 4.2 is past its end of life
        "djangorestframework>=3.15",
        "requests>=2.31",
        "cryptography>=42",
    ],
    extras_require={
        "celery": ["celery[redis]>=5.3"],
        "openapi": ["drf-spectacular>=0.27"],
        "filters": ["django-filter>=24.1"],
        "test": [
            "pytest>=8",
            "pytest-django>=4.8",
            "pytest-timeout>=2.3",
            "pytest-xdist>=3.5",
            "mypy>=1.10",
            "django-stubs>=5.2",
            "djangorestframework-stubs>=3.15",
            "types-requests>=2.31",
            "hypothesis>=6.100",
            "ruff>=0.6",
            "psycopg[binary]>=3.1",
            "celery[redis]>=5.3",
            "drf-spectacular>=0.27",
            "django-filter>=24.1",
            "schemathesis>=4",
            "selenium>=4.20",
        ],
    },
    entry_points={
        "console_scripts": ["wxpay-simulator=django_wxpay_profitsharing.simulator.__main__:main"],
    },
    classifiers=[
        "Development Status :: 4 - Beta",
        "Environment :: Web Environment",
        "Framework :: Django",
        "Framework :: Django :: 5.2",
        "Intended Audience :: Developers",
        "License :: OSI Approved :: MIT License",
        "Natural Language :: Chinese (Simplified)",
        "Natural Language :: English",
        "Operating System :: OS Independent",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.11",
        "Topic :: Office/Business :: Financial",
        "Typing :: Typed",
    ],
)
