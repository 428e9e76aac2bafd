# hubnb: `make demo` builds everything and runs the demo merchant; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_PROFILES ?= 20000
DEMO_SEED ?= 7

.PHONY: demo test soak env bench-env bench bench-big clean cdnow regular batch-demo catalogs catalog

env: $(BIN)/.installed catalogs

# the report translations: each hubnb/locale/<locale>/LC_MESSAGES/hubnb.po compiled to its .mo,
# quietly, and only when the .po changed
CATALOGS := $(patsubst %.po,%.mo,$(wildcard hubnb/locale/*/LC_MESSAGES/hubnb.po))

catalogs: $(CATALOGS)
	@:

hubnb/locale/%/LC_MESSAGES/hubnb.mo: hubnb/locale/%/LC_MESSAGES/hubnb.po | $(BIN)/.installed
	@$(BIN)/pybabel --quiet compile -i $< -o $@ -l $* --use-fuzzy

# after changing a message: extract it, then merge it into every language's .po
catalog: $(BIN)/.installed
	$(BIN)/pybabel extract -F babel.cfg --no-wrap --sort-by-file -o hubnb/locale/hubnb.pot \
	  --project hubnb --copyright-holder "hubnb authors" .
	$(BIN)/pybabel update -i hubnb/locale/hubnb.pot -d hubnb/locale -D hubnb --no-wrap \
	  --ignore-obsolete

$(BIN)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 12))' || \
	  { echo "hubnb needs Python >= 3.12; $(PYTHON) is $$($(PYTHON) --version 2>&1)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m ipykernel install --sys-prefix --name hubnb --display-name "Python (hubnb)" >/dev/null
	@touch $@

data/demo/.complete: $(BIN)/.installed hubnb/demo.py | catalogs
	$(BIN)/hubnb demo-data --out data/demo --profiles $(DEMO_PROFILES) --seed $(DEMO_SEED) --with-predictions
	@touch $@

demo: data/demo/.complete catalogs
	$(BIN)/hubnb run params/demo.yaml
	@echo "Reports: $(CURDIR)/outputs/demo/ (open $(CURDIR)/outputs/index.html)"

test: data/demo/.complete catalogs
	$(BIN)/python -m pytest tests notebooks --nbval-lax

# the tests of faults and bad input at length (make test runs a fixed few of each):
# - tests/test_malformed.py with SOAK_EXAMPLES random examples per property (a failure is kept
#   in .hypothesis/ and tried first next time);
# - tests/test_faults.py with SOAK_KILLS SIGKILLs of `hubnb run`, and of batch, pull-klaviyo
#   and demo-data in proportion (about 30 minutes for 300)
SOAK_EXAMPLES ?= 3000
SOAK_KILLS ?= 300
soak: $(BIN)/.installed catalogs
	HUBNB_HYPOTHESIS_PROFILE=soak HUBNB_SOAK_EXAMPLES=$(SOAK_EXAMPLES) \
	  $(BIN)/python -m pytest tests/test_malformed.py -q --hypothesis-show-statistics
	HUBNB_SOAK_KILLS=$(SOAK_KILLS) $(BIN)/python -m pytest tests/test_faults.py -x -v

# benchmarks run from their own venv: pymc-marketing (the `bench` extra) pins other pymc and
# numpy versions than hubnb's, so it must stay out of .venv, where the tests run
BENCH := .venv-bench/bin

bench-env: $(BIN)/.installed catalogs
	test -x $(BENCH)/python || $(PYTHON) -m venv .venv-bench
	$(BENCH)/python -m pip install --quiet --upgrade pip
	$(BENCH)/python -m pip install --quiet -e '.[test,bench]'

bench: bench-env data/cdnow/.complete data/demo/.complete data/regular/.complete
	$(BIN)/python benchmarks/demo_bench.py
	$(BENCH)/python benchmarks/hub_bench.py
	$(BENCH)/python benchmarks/clv_bench.py
	$(BENCH)/python benchmarks/pareto_native_bench.py
	$(BENCH)/python benchmarks/clv_models_bench.py
	$(BENCH)/python benchmarks/overhead_bench.py
	$(BENCH)/python benchmarks/throughput_bench.py
	$(BIN)/python benchmarks/regularity_bench.py --ref b3b93bc
	$(BIN)/python benchmarks/warm_batch_bench.py
	$(BIN)/python benchmarks/big_bench.py --ref 99ef93b
	$(BIN)/python benchmarks/pooling_bench.py

# one 10,000,000-profile merchant (about 15 minutes with its data; 24 GB of memory advised)
bench-big: env
	$(BIN)/python benchmarks/big_bench.py --profiles 10000000

clean:
	rm -rf $(VENV) .venv-bench data/demo data/batch data/regular outputs/*/ outputs/index.html

data/cdnow/.complete: $(BIN)/.installed
	$(BIN)/hubnb cdnow-data --out data/cdnow
	@touch $@

cdnow: data/cdnow/.complete
	$(BIN)/hubnb run params/cdnow/cdnow.yaml

# a merchant whose customers reorder at regular intervals (MBG/CNBD-2 purchases)
data/regular/.complete: $(BIN)/.installed hubnb/demo.py
	$(BIN)/hubnb demo-data --out data/regular --profiles 20000 --seed 7 --regularity 2
	@touch $@

regular: data/regular/.complete catalogs
	$(BIN)/hubnb run params/regular/regular.yaml

# batch runs: three demo merchants (params/batch/), each from its own simulated dataset
BATCH_MERCHANTS := north lago bergen
BATCH_PROFILES ?= 3000

data/batch/.complete: $(BIN)/.installed hubnb/demo.py
	$(BIN)/hubnb demo-data --out data/batch/north --profiles $(BATCH_PROFILES) --seed 11 --with-predictions
	$(BIN)/hubnb demo-data --out data/batch/lago --profiles $(BATCH_PROFILES) --seed 12
	$(BIN)/hubnb demo-data --out data/batch/bergen --profiles $(BATCH_PROFILES) --seed 13
	$(BIN)/hubnb demo-data --out data/batch/fjord --profiles 300 --seed 14
	$(BIN)/hubnb demo-data --out data/batch/pico --profiles 80 --seed 15
	$(BIN)/hubnb demo-data --out data/batch/atom --profiles 20 --seed 16
	@touch $@

batch-demo: data/batch/.complete catalogs
	$(BIN)/hubnb batch params/batch --out outputs
	@echo "Index: $(CURDIR)/outputs/index.html"
