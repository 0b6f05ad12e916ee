# Two commands do all the set-up on a fresh machine:
#   make up    - install, then run the whole pipeline (broker, worker, sink, simulator, dashboard)
#   make test  - install, then run every test (starts a local broker if none answers)
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
# rustup's cargo, for the compiled core, when the shell's PATH lacks it.
export PATH := $(PATH):$(HOME)/.cargo/bin

.PHONY: setup up test unit integration clean messages

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml native/Cargo.toml native/Cargo.lock $(wildcard native/src/*.rs) warehouse/spark/pom.xml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,spark]'
	# Delta Lake's jars for Spark into the Maven local repository: the Spark test copies
	# them from there offline (tests/integration/spark_support.py).
	mvn -q -B -f warehouse/spark/pom.xml dependency:resolve
	# The worker's compiled core (Rust, built by maturin with the machine's cargo).
	$(BIN)/pip install --quiet ./native
	touch $@

up: setup
	$(BIN)/callstream up

# The unit half is pure CPU: one process per core (pytest-xdist). The integration half
# mostly waits on brokers, browsers and subprocesses: two processes share it, a test file
# each (its module fixtures stay in one process), except the tests marked `alone` (kills,
# failovers, signals: timed against the machine), which run afterwards, one at a time.
INTEGRATION = $(BIN)/pytest -m "integration and not alone" -n 2 --dist loadfile; shared=$$?; \
	  $(BIN)/pytest -m "integration and alone"; alone=$$?

test: setup
	scripts/ensure-chromium
	$(BIN)/pytest -m unit -n 2; unit=$$?; $(INTEGRATION); \
	  exit $$(( unit || shared || alone ))

unit: setup
	$(BIN)/pytest -m unit -n 2

integration: setup
	scripts/ensure-chromium
	$(INTEGRATION); exit $$(( shared || alone ))

clean:
	rm -rf $(VENV) var test-artifacts

# The dashboard's Russian catalogue: .po and .mo from dashboards/locale/ru_messages.py.
messages: setup
	$(BIN)/python -m dashboards.locale.build
