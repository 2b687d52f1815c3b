# The two commands of the README: `make demo` (the grading demo) and `make test` (every test).
PYTHON ?= python3
VENV := .venv
PY := $(CURDIR)/$(VENV)/bin/python
# nbgrader runs `alembic` and jupyter kernels by name: the venv's scripts come first.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup notebooks release demo test bench student-export

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

notebooks: setup
	$(PY) -m autograder.notebooks build

release: notebooks
	for ps in $$($(PY) -c "from autograder.notebooks import assignments; print(*assignments())"); do \
		$(PY) -m nbgrader generate_assignment $$ps --force --log-level=WARN || exit 1; \
	done

demo: release
	$(PY) -m autograder.demo

test: setup
	$(PY) -m pytest

bench: setup
	$(PY) -m autograder.bench

# The student-facing repo (no solutions, no grader): make student-export DEST=../student REPO=owner/name
REPO ?= training-loops/student
student-export: release
	@test -n "$(DEST)" || (echo "usage: make student-export DEST=folder [REPO=owner/name]" && exit 2)
	$(PY) -m autograder.export $(DEST) --repo $(REPO)
