# django-wxpay-profitsharing: `make test` and `make demo` work on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PG_URL ?= postgres://postgres@127.0.0.1:5432/test
MYSQL_DEFAULT_URL ?= mysql://root@127.0.0.1:3306/test
# Parallel test workers (pytest-xdist); PYTEST_WORKERS=0 runs in this process.
PYTEST_WORKERS ?= 2
# Each pass names its ten slowest tests: where its minutes go.
PYTEST_ARGS ?= -n $(PYTEST_WORKERS) --durations=10
DEMO_PORT ?= 8000
SIM_PORT ?= 8765
DEMO_STATE ?= .demo

.PHONY: install test test-later test-sqlite test-sqlite-no-tz test-postgres test-mysql mysql-driver lint \
	format demo bench browser clean messages docs docs-check dist \
	matrix

# Both distributions, editable: the app and its simulator (simulator/, its own pyproject).
$(VENV)/.installed: setup.py pyproject.toml simulator/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]' -e ./simulator
	touch $@

install: $(VENV)/.installed

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Debian packages, installed only when missing; the package index is refreshed only if the
# first attempt fails. Without apt-get (or without root) the step reports and moves on.
apt_install = { command -v apt-get >/dev/null && export DEBIAN_FRONTEND=noninteractive && \
  { apt-get install -y -qq $(1) >/dev/null 2>&1 || \
    { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq $(1) >/dev/null 2>&1; }; }; }

# Headless Chromium for tests/test_browser.py (skipped without it), and a CJK font so that
# the Chinese text in its screenshots (seeded data, zh_Hans labels) is text, not boxes.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  $(call apt_install,chromium chromium-driver) || \
	  echo "chromium/chromedriver unavailable: the browser test will be skipped"
	@fc-list :lang=zh 2>/dev/null | grep -q . || \
	  $(call apt_install,fonts-noto-cjk) || \
	  echo "fonts-noto-cjk unavailable: Chinese text in the browser screenshots may show as boxes"

# Every test runs on SQLite first; the passes after it (SQLite with USE_TZ = False,
# PostgreSQL, MariaDB/MySQL) repeat only the tests that reach the database (chosen by
# tests/passes.py, which also prints each pass's banner). The passes, ruff/mypy and the
# docs use different processes and servers and often wait (on subprocesses, servers,
# the disk), so they run side by side, each into its own log: a line when each ends,
# then each log whole with its exit status and time. make fails when any of them fails.
test: install browser
	@$(call side_by_side,lint docs-check test-sqlite $(LATER_PASSES))

# The three later passes alone, side by side.
test-later: install
	@$(call side_by_side,$(LATER_PASSES))

PASS_LOGS := test-output/passes
LATER_PASSES := test-sqlite-no-tz test-postgres test-mysql
# xdist workers of the first pass and of each later pass when they run side by side.
FIRST_WORKERS ?= 2
LATER_WORKERS ?= 1

# Runs the make targets $(1) at once, each into $(PASS_LOGS)/<target>.log, and says when
# each ends; then shows each log, its exit status and its time; fails if any failed.
side_by_side = mkdir -p $(PASS_LOGS); rm -f $(PASS_LOGS)/*.status; all=$$(date +%s); \
  for job in $(1); do \
    case $$job in test-sqlite) workers=$(FIRST_WORKERS);; *) workers=$(LATER_WORKERS);; esac; \
    ( start=$$(date +%s); \
      $(MAKE) --no-print-directory $$job PYTEST_WORKERS=$$workers >$(PASS_LOGS)/$$job.log 2>&1; \
      status=$$?; seconds=$$(($$(date +%s) - start)); echo "$$status $$seconds" >$(PASS_LOGS)/$$job.status; \
      echo "== make $$job ended: exit status $$status, $$seconds s" ) & \
  done; wait; failed=""; \
  for job in $(1); do \
    read status seconds <$(PASS_LOGS)/$$job.status; \
    echo; echo "== make $$job ($(PASS_LOGS)/$$job.log)"; cat $(PASS_LOGS)/$$job.log; \
    echo "== make $$job: exit status $$status, $$seconds s"; \
    [ "$$status" = 0 ] || failed="$$failed $$job"; \
  done; \
  for job in $(1); do read status seconds <$(PASS_LOGS)/$$job.status; \
    printf '== %-18s %s s, exit status %s\n' $$job $$seconds $$status; done; \
  echo "== all side by side: $$(($$(date +%s) - all)) s"; \
  if [ -n "$$failed" ]; then echo "== failed:$$failed"; exit 1; fi

test-sqlite: install
	env -u DATABASE_URL $(VENV)/bin/pytest $(PYTEST_ARGS)

# Many Chinese projects run USE_TZ = False with TIME_ZONE = "Asia/Shanghai": once more so.
test-sqlite-no-tz: install
	env -u DATABASE_URL WXPAY_TEST_USE_TZ=0 $(VENV)/bin/pytest $(PYTEST_ARGS)

# Runs when DATABASE_URL is set, or when PostgreSQL answers on 127.0.0.1:5432.
test-postgres: install
	@url="$${DATABASE_URL:-}"; \
	if [ -z "$$url" ] && $(PY) -c 'import socket; socket.create_connection(("127.0.0.1", 5432), 1)' 2>/dev/null; then \
	  url="$(PG_URL)"; fi; \
	if [ -n "$$url" ]; then DATABASE_URL="$$url" $(VENV)/bin/pytest $(PYTEST_ARGS); \
	else echo "== PostgreSQL not reachable and DATABASE_URL unset: skipped"; fi

# The MySQL driver (mysqlclient) and the headers it builds against, each only when missing.
mysql-driver: install
	@$(PY) -c 'import MySQLdb' 2>/dev/null || { \
	  pkg-config --exists libmariadb 2>/dev/null || pkg-config --exists mysqlclient 2>/dev/null || \
	    $(call apt_install,libmariadb-dev pkg-config) || echo "could not install libmariadb-dev"; \
	  $(PY) -m pip install --quiet mysqlclient; }

# Runs when MYSQL_URL is set, or when MySQL/MariaDB answers on 127.0.0.1:3306; the test
# server gets its time-zone tables first when it has none (TIME_ZONE is Asia/Shanghai).
test-mysql: install
	@url="$${MYSQL_URL:-}"; \
	if [ -z "$$url" ] && $(PY) -c 'import socket; socket.create_connection(("127.0.0.1", 3306), 1)' 2>/dev/null; then \
	  url="$(MYSQL_DEFAULT_URL)"; fi; \
	if [ -n "$$url" ]; then \
	  $(MAKE) --no-print-directory mysql-driver && $(PY) tests/prepare_mysql.py "$$url" && \
	  DATABASE_URL="$$url" $(VENV)/bin/pytest $(PYTEST_ARGS); \
	else echo "== MySQL not reachable and MYSQL_URL unset: skipped"; fi

# The versions shops run (noxfile.py): every Python x Django pair on SQLite, the newest and
# the LTS on PostgreSQL and MariaDB, one session after another (each pytest -n 2). pyenv's
# interpreters go first on PATH: its shims answer only for the global version. Each
# session's venv is new; NOX_ARGS=-r reuses them, NOX_ARGS='-s "sqlite(py3.13-django6.1)"'
# runs one (nox -l lists them).
PYENV_ROOT ?= $(HOME)/.pyenv
NOX_ARGS ?=
matrix: install mysql-driver
	PATH="$$(printf '%s:' $(PYENV_ROOT)/versions/3.1[123].*/bin)$$PATH" $(VENV)/bin/nox $(NOX_ARGS)

# The documentation: the generated pages (settings, states, signals, error codes, the
# simulator's --help) rewritten from the code, then HTML in site/, warnings as errors.
docs: install
	$(PY) docs/generate.py
	$(VENV)/bin/mkdocs build --strict --quiet --site-dir site

# What make test runs: a generated page out of date is an error (make docs rewrites it).
docs-check: install
	$(PY) docs/generate.py --check
	$(VENV)/bin/mkdocs build --strict --quiet --site-dir site

messages: install
	cd django_wxpay_profitsharing && ../$(PY) -m django compilemessages --ignore=.venv -l zh_Hans

# A fresh demo every time (its state in .demo/, reset at each start); DEMO_KEEP=1 continues
# the previous one. A port in use is an error naming it (exit status 1).
demo: install
	$(PY) example_project/demo.py --port $(DEMO_PORT) --simulator-port $(SIM_PORT) \
	  --state-dir $(DEMO_STATE) $(if $(DEMO_KEEP),--keep)

bench: install
	$(PY) bench/run_all.py

# The sdist and wheel of each distribution, in dist/: `pip install dist/*.whl`.
dist: install
	rm -rf dist
	$(PY) -m build --outdir dist .
	$(PY) -m build --outdir dist simulator

# Everything make creates, the demo's state included (and where older demos kept it).
clean:
	rm -rf $(VENV) build dist *.egg-info simulator/build simulator/*.egg-info .pytest_cache \
	  .ruff_cache .mypy_cache .demo test-output site example_project/db.sqlite3 \
	  example_project/.simulator
