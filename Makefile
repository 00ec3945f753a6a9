# The two commands of the README. Both set up whatever is missing first.
.PHONY: start test test-faults setup

setup:
	@bash scripts/setup.sh

# The local stack: every real component on this machine, scaling for real.
start: setup
	node bin/canopy.mjs stack

# Type check, then every test (they start their own real servers).
test: setup
	npm test

# The fault scenarios end to end (loss, outages, redis-loss, clean-up after
# SIGINT/SIGTERM/SIGKILL), each in network namespaces: needs root; then the
# stack's end-to-end file with its surge scenario, alone. About 20 min.
test-faults: setup
	CANOPY_E2E_FAULTS=1 CANOPY_E2E_SURGE=1 npx vitest run --no-file-parallelism stack/faults.test.ts stack/stack.test.ts
