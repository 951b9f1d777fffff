# The two commands a fresh clone needs (both set up .venv first; set-up is idempotent and cached):
#   make quickstart   — install everything, then build the quickstart dataset
#   make test         — install everything, then run the test suite
.PHONY: setup quickstart test bench recipes-sync
export RAY_AUTH_MODE ?= disabled
export HF_HUB_OFFLINE ?= 1

setup:
	bash scripts/setup.sh

# The quickstart's teachers both run on vLLM's CPU engine: no llama.cpp to compile.
quickstart:
	VDATA_LLAMACPP=0 bash scripts/setup.sh
	# the two teachers' models side by side, one core each: 22 s instead of 12 + 23 on 2 cores
	.venv/bin/vdata models tiny-vlm & vlm=$$!; .venv/bin/vdata models smollm2 && wait $$vlm
	.venv/bin/vdata build examples/quickstart.yaml

# Two pytest workers on 2 cores (tests/conftest.py gives each its own Ray and its own core for vLLM):
# 1593 s against 2269 s for one worker here. TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= 2
test: setup
	.venv/bin/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal

bench: setup
	for b in bench/bench_*.py; do .venv/bin/python $$b || exit 1; done

# configs/recipes/ is where recipes are edited; vdata/assets/recipes/ is the copy an installed vdata reads
# (`vdata recipes`, `vdata new`). tests/test_recipes.py fails when they differ.
recipes-sync:
	rm -f vdata/assets/recipes/*.yaml && cp configs/recipes/*.yaml vdata/assets/recipes/
