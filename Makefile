# The two set-up commands of the README: `make demo` (install and run) and `make check`
# (install and run every check: lint, types, tests). Both create .venv on first use.
VENV ?= .venv
BIN := $(VENV)/bin
TEST_PACKAGES ?= clamav-daemon postfix prometheus logrotate systemd w3m chromium chromium-driver fonts-noto-cjk postgresql gettext knot slapd ldap-utils libcairo2
# The peers of the relay benchmark (benchmarks/peers.py), run as private instances.
BENCH_PACKAGES ?= postfix mimedefang

.PHONY: demo check lint types contracts test install test-packages

$(BIN)/mukaika: pyproject.toml
	sh deploy/system-packages.sh
	python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/mukaika

demo: install
	$(BIN)/mukaika serve --demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: install
	$(BIN)/mypy

# Import contracts between the packages (pyproject.toml [tool.importlinter]; ARCHITECTURE.md).
contracts: install
	$(BIN)/lint-imports

# Debian packages only the tests use, never for `make demo`: a real clamd and a real Postfix,
# Prometheus' promtool (the alert rules' unit tests), logrotate and systemd-analyze (the
# deploy files), w3m (the yardstick of the HTML-to-text corpus test), chromium, its driver and
# Japanese fonts (the web console's browser tests, tests/browser.py), PostgreSQL (a private
# cluster the store's tests run on, tests/postgres.py; no system cluster), gettext (msgfmt and
# xgettext: the console's translations are checked against the committed catalogue). A test
# whose tool is missing fails rather than skips (tests/tools.py).
test-packages:
	sh deploy/system-packages.sh $(TEST_PACKAGES)

test: install test-packages
	$(BIN)/pytest

check: lint types contracts test

# The web console's Japanese catalogue: after editing gateway/console/locale/ja/LC_MESSAGES/
# django.po, rebuild the committed django.mo (needs Debian's gettext).
.PHONY: translations
translations:
	msgfmt --check -o gateway/console/locale/ja/LC_MESSAGES/django.mo \
		gateway/console/locale/ja/LC_MESSAGES/django.po

# Benchmarks (issue 5): about 10 minutes on 2 cores; results in benchmarks/results/.
# Postfix's smtp-sink (the C ceiling) is used when /usr/sbin/smtp-sink exists.
.PHONY: bench
bench: install
	$(BIN)/python -m pip install -q -e '.[bench]'
	sh deploy/system-packages.sh $(BENCH_PACKAGES)
	$(BIN)/python -m benchmarks.pipeline
	$(BIN)/python -m benchmarks.cdr
	$(BIN)/python -m benchmarks.memory
	$(BIN)/python -m benchmarks.relay
	$(BIN)/python -m benchmarks.peers
	$(BIN)/python -m benchmarks.proposals
	$(BIN)/python -m benchmarks.report
