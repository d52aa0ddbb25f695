"""Django settings of the benchmarks: the test suite's, with the REST API mounted.

``DATABASE_URL`` and ``WXPAY_TEST_CONFIG`` are set by ``bench/common.py`` before
Django starts (and passed on to worker processes).
"""

from tests.settings import *  # noqa: F403

ROOT_URLCONF = "bench.bench_urls"
DEBUG = False
