# `make main` — set up what is missing, then train and compare the models on ML-100k.
# `make test` — set up what is missing, then run the test suite.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
SHARED_ML100K := $(abspath ../shared/data/ml-100k)
# Read the shared copy when there is one; otherwise the loader downloads the zip.
export GNNREC_ML100K_DIR ?= $(if $(wildcard $(SHARED_ML100K)/u.data),$(SHARED_ML100K),)
export GNNREC_HOME ?= $(abspath .gnnrec)
SHARED_DOUBAN := $(abspath ../shared/data/douban)
export GNNREC_DOUBAN_DIR ?= $(if $(wildcard $(SHARED_DOUBAN)/training_test_dataset.mat),$(SHARED_DOUBAN),)

.PHONY: browser venv main douban test lint readme-check readme-tables docs scatter clean

venv: $(VENV)/.installed

$(VENV)/.installed: setup.cfg constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

# The browser test of the web page drives Debian's Chromium: installed here when missing (as root, with apt-get).
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else echo "chromium or chromedriver missing and no root apt-get: the browser test will be skipped"; fi; fi

main: venv
	$(VENV)/bin/gnnrec benchmark quick --jobs auto

# Every model on Douban's given split, 3 seeds; needs training_test_dataset.mat
# in $GNNREC_DOUBAN_DIR (the shared copy when there is one). Rerunning reuses the finished cells.
douban: venv
	$(VENV)/bin/gnnrec benchmark douban --out benchmarks/results/douban --no-tensorboard --jobs auto

# pytest-xdist: -n auto is one worker per core, at most 4 (tests/conftest.py); worksteal balances test by test
# (one test runs minutes, most run milliseconds). TEST_WORKERS=0 runs serially in one process.
TEST_WORKERS ?= auto
test: venv browser
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal

lint: venv
	$(VENV)/bin/ruff check .

# Result tables in README.md and docs/*.md are copied from the committed benchmarks/results files
# (see benchmarks/readme_tables.py): readme-check fails when they disagree, readme-tables rewrites them.
readme-check: venv
	$(PY) benchmarks/readme_tables.py --check

readme-tables: venv
	$(PY) benchmarks/readme_tables.py

# The MkDocs site (docs/, mkdocs.yml) into site/; --strict fails on a broken link or docstring reference.
docs: venv
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

# Optional: torch-scatter has no wheel here and builds from source (~10 minutes).
scatter: venv
	$(PY) -m pip install --no-build-isolation -c constraints.txt '.[scatter]'

clean:
	rm -rf $(VENV) .gnnrec *.egg-info site
