# Two entry points, each doing its own set-up: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt -e '.[test,onnx,tensorboard,notebook,ray]'
	touch $(STAMP)

.PHONY: setup demo test bench fuzz
setup: $(STAMP)

# The main job: SAUX (shared extractor + auxiliary comparison head) on the
# embedded MNIST digits, a few trials, with its picture beside the run.
demo: $(STAMP)
	$(BIN)/minispec check specs/saux.mdl
	mkdir -p runs
	if command -v dot >/dev/null; then $(BIN)/minispec graph specs/saux.mdl -o runs/saux.svg; \
	else $(BIN)/minispec graph specs/saux.mdl -o runs/saux.mmd; fi
	$(BIN)/minispec run specs/saux.mdl --trials 3 --epochs 10

test: $(STAMP)
	$(BIN)/python -m pytest -n 2

bench: $(STAMP)
	$(BIN)/python benchmarks/trials.py

# The front end's own fuzzer, longer than CI's 1,000 mutants (SEED and COUNT
# may be set); failing inputs are kept under tests/fuzz/regressions/.
SEED ?= 1
COUNT ?= 20000
fuzz: $(STAMP)
	$(BIN)/python -m tests.fuzz.fuzzer --count $(COUNT) --seed $(SEED) --save
