# The two commands of the README. Both set up whatever is missing first.
.PHONY: start test test-surge setup

setup:
	@bash scripts/setup.sh

# The local stack: every real component on this machine, scaling for real.
start: setup
	node bin/canopy.mjs stack

# Type check, then every test (they start their own real servers).
test: setup
	npm test

# The surge scenario end to end, alone (about 3 min): its 108 real viewers
# and the rest of the stack load two cores, and under CI's load a viewer gave
# up waiting, so `make test` leaves it out.
test-surge: setup
	CANOPY_E2E_SURGE=1 npx vitest run stack/stack.test.ts -t 'the surge scenario'
