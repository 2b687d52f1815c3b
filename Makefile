# The two commands of the README: `make demo` (the grading demo) and `make test` (every test).
PYTHON ?= python3
VENV := .venv
PY := $(CURDIR)/$(VENV)/bin/python
# nbgrader runs `alembic` and jupyter kernels by name: the venv's scripts come first.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup notebooks release demo test bench student-export

# Debian packages the commands need, installed when missing (as root, with apt-get): bubblewrap
# confines student code whenever anything is graded; the tests also start a PostgreSQL server and
# drive Chromium (Playwright cannot download its own browser here).
define debian_packages
	@missing=""; for pkg in $(1); do dpkg -s $$pkg > /dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get > /dev/null; then \
			apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
		else echo "needs the Debian packages$$missing: sudo apt-get install$$missing"; exit 1; fi; \
	fi
endef

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
	$(call debian_packages,bubblewrap)
	$(PY) -m autograder.demo

test: setup
	$(call debian_packages,bubblewrap chromium postgresql)
	$(PY) -m pytest

bench: setup
	$(call debian_packages,bubblewrap)
	$(PY) -m autograder.bench

# The student-facing repo (no solutions, no grader): make student-export DEST=../student REPO=owner/name
REPO ?= training-loops/student
student-export: release
	@test -n "$(DEST)" || (echo "usage: make student-export DEST=folder [REPO=owner/name]" && exit 2)
	$(PY) -m autograder.export $(DEST) --repo $(REPO)
