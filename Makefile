# Two commands: `make run` (the embedded default, with a demo tenant) and `make test`.
# Everything else here is what those two need. See README.md.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

# Django 6 needs Python >= 3.12: take the first one found (PATH, then pyenv's versions).
PYTHON ?= $(shell for p in python3.14 python3.13 python3.12 $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.1[2-9]*/bin/python3 /root/.pyenv/versions/3.1[2-9]*/bin/python3 /usr/local/bin/python3 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { echo $$p; break; }; done)

.PHONY: run test venv dev-deps migrate clean

$(VENV)/.installed: requirements.txt
	@test -n "$(PYTHON)" || { echo "Python 3.12 or newer is needed (Django 6); none was found." >&2; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@# The project root on the venv's path, so pytest's early plugin and tools import it.
	@$(PY) -c 'import site, os; open(os.path.join(site.getsitepackages()[0], "engarde-project.pth"), "w").write(os.getcwd() + "\n")'
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

venv: $(VENV)/.installed
dev-deps: $(VENV)/.installed-dev

# The embedded default: SQLite in var/, tasks in-process, e-mail to the console, DEBUG on.
# `make run PORT=8123` (or HOST=…): the printed logins and the webhook URLs the pages show name
# that address (PUBLIC_BASE_URL, unless the environment sets it: a tunnel, say).
run: export DEBUG ?= true
run: export PUBLIC_BASE_URL ?= http://$(HOST):$(PORT)
run: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo --base-url http://$(HOST):$(PORT)
	$(PY) manage.py runserver $(HOST):$(PORT)

# With DATABASE_URL set (CI: .ci/run) the suite runs there. Without it, on a throwaway PostgreSQL
# cluster when the binaries are installed (scripts/with-throwaway-postgres), else on SQLite, where
# the tests that need PostgreSQL are skipped and listed with the reason.
test: dev-deps
	@if [ -n "$$DATABASE_URL" ]; then \
		$(PY) -m pytest; \
	else \
		status=0; scripts/with-throwaway-postgres $(PY) -m pytest || status=$$?; \
		if [ $$status -eq 97 ]; then \
			echo "make test: no DATABASE_URL and no PostgreSQL binaries: running on SQLite; tests that need PostgreSQL are skipped (listed below)."; \
			$(PY) -m pytest; \
		else exit $$status; fi; \
	fi

clean:
	rm -rf $(VENV) var/db.sqlite3 .pytest_cache

# The full app against the smallest correct receiver, under wrk on loopback only (PostgreSQL as
# the owner and the runtime role, Redis db 12). About 2 minutes; see README.md, "Benchmark".
# Then the Meta Ads sync against the local fake Graph API (bench/sync_bench.py; about a minute).
.PHONY: bench bench-sync
bench: venv
	@command -v wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(PY) bench/run.py
	$(PY) bench/sync_bench.py

bench-sync: venv
	$(PY) bench/sync_bench.py
