import { describe, expect, it } from 'vitest';
import { runCanopy } from '../test/canopy.ts';

// One run on the real local stack: every milestone is reached and the floor is
// measured; the 1.25x target is judged by the full bench, never here.
describe('canopy bench time-to-scale (one run)', () => {
  it('reaches every milestone in order and ends with a RATIO line', async () => {
    const r = await runCanopy(['bench', 'time-to-scale', '--runs', '1'], 240_000);
    expect(r.code, r.stderr).toBe(0);
    const m = /alert firing ([\d.]+) s, webhook received ([\d.]+) s, subtree ready ([\d.]+) s, first RTP on a new node ([\d.]+) s, targets up ([\d.]+) s/.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    const [alert, webhook, ready] = m!.slice(1, 4).map(Number) as [number, number, number];
    expect(alert).toBeLessThanOrEqual(webhook);
    expect(webhook).toBeLessThanOrEqual(ready);
    expect(r.stdout).toMatch(/floor: .* provisioning alone [\d.]+ s = [\d.]+ s/);
    expect(r.stdout.trim().split('\n').at(-1)).toMatch(/^RATIO \d+\.\d+$/);
  }, 250_000);
});
