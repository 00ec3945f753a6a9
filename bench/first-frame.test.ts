import { describe, expect, it } from 'vitest';
import { runCanopy } from '../test/canopy.ts';
import { netnsUnavailable } from '../test/netns.ts';

// A smoke run with two joins per mode: proves the benchmark drives Chromium
// through both trees and ends with a RATIO line. Times are judged by the full
// run, never in tests.
const why = netnsUnavailable();
describe.skipIf(why !== null)('canopy bench first-frame (small)', () => {
  it('measures both modes and ends with a RATIO line', async () => {
    const r = await runCanopy(['bench', 'first-frame', '--joins', '2'], 300_000);
    expect(r.code, r.stderr).toBe(0);
    for (const mode of ['on', 'periodic'])
      expect(r.stdout).toMatch(
        new RegExp(`^${mode}: 2 joins, POST to first decoded frame p50 \\d+ ms, p95 \\d+ ms`, 'm'),
      );
    expect(r.stdout.trim().split('\n').at(-1)).toMatch(/^RATIO \d+\.\d+$/);
  }, 320_000);
});
