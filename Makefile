# spia_mpi — the two commands a new user needs:
#   make demo   installs what is missing, then runs the built-in example
#   make test   installs what is missing, then runs the whole test suite
#               (serial tests and the mpirun -n 2 tests, one pytest summary)
VENV    ?= .venv
PY      := $(VENV)/bin/python
NP      ?= 2
# OpenMPI refuses root without these; --oversubscribe lets NP exceed the core count.
MPIRUN  ?= $(shell $(PY) -m spia_mpi.parallel.mpi --mpirun-prefix 2>/dev/null || echo mpirun)

.PHONY: env test test-fast demo demo-grid example-li2mgh16 bench clean help

help:
	@echo "make demo   - install (if needed) and run the built-in example on $(NP) ranks"
	@echo "make test   - install (if needed) and run the full test suite (incl. mpirun -n 2)"
	@echo "make demo-grid - the real-space dense-hydrogen example on $(NP) ranks"
	@echo "make example-li2mgh16 - Li2MgH16 with the GPAW backend end to end on $(NP) ranks (≈ 1 h on 2 cores)"
	@echo "make bench  - run the benchmarks and rewrite docs/benchmarks.md"

env:
	@bash tools/bootstrap.sh

test: env
	$(PY) -m pytest tests -ra

test-fast: env
	$(PY) -m pytest tests -ra -m "not slow"

demo: env
	$(MPIRUN) -n $(NP) $(PY) -m spia_mpi demo

demo-grid: env
	$(MPIRUN) -n $(NP) $(PY) -m spia_mpi demo --model grid --out demo-grid-output

example-li2mgh16: env
	mkdir -p li2mgh16-output
	cp spia_mpi/data/li2mgh16_gpaw.toml li2mgh16-output/
	cd li2mgh16-output && $(MPIRUN) -n $(NP) $(abspath $(PY)) -m spia_mpi run li2mgh16_gpaw.toml

bench: env
	$(PY) drivers/run_benchmarks.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
