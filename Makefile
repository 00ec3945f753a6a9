# The two commands of the README. Both set up whatever is missing first.
.PHONY: start test setup

setup:
	@bash scripts/setup.sh

# The local stack: every real component on this machine, scaling for real.
start: setup
	node bin/canopy.mjs stack

# Type check, then every test (they start their own real servers).
test: setup
	npm test
