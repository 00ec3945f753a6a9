import { describe, expect, it } from 'vitest';
import { runCanopy } from '../test/canopy.ts';
import { scaleIntervals } from './rules.ts';
import { SEED_ALERT_RULES } from './seed-alerts.ts';

describe('scaleIntervals', () => {
  it('divides every group interval and leaves the rules as they are', () => {
    const out = scaleIntervals(SEED_ALERT_RULES, 6);
    expect(out).toMatch(/interval: 5000ms/);
    expect(out).toMatch(/rate\(node_cpu_seconds_total\{mode="idle",node_type="egress"\}\[1m\]\)\) \* 100 > 80/);
    expect(() => scaleIntervals('groups: [{name: g, interval: 5x, rules: []}]', 2)).toThrow(/not a duration/);
  });
});

// A smoke run at the smallest size against a real Prometheus; the targets
// are judged by the full run, never here.
describe('canopy bench rules (small)', () => {
  it('measures idle, seed and pack CPU, the floor, and ends with a RATIO line', async () => {
    const r = await runCanopy(
      [
        'bench',
        'rules',
        ...['--nodes', '20', '--trees', '2', '--cores', '2'],
        ...['--seconds', '5', '--warmup', '2', '--speedup', '30'],
      ],
      120_000,
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.at(-1)).toMatch(/^RATIO \d+\.\d+$/);
    expect(r.stdout).toMatch(/\[2t 20n 2c\] fleet: \d+ series, 7 min of history/);
    expect(r.stdout).toMatch(/seed: [\d.]+ CPU-s\/min at x30/);
    expect(r.stdout).toMatch(/group media_tree_alerts: [\d.]+ ms/);
    expect(r.stdout).toMatch(/group media-tree\.scaling: [\d.]+ ms/);
    expect(r.stdout).toMatch(/floor: \d+ distinct raw series in \d+ reads/);
    expect(r.stdout).toMatch(/point 2 trees, 20 nodes, 2 cores: pack\/seed [\d.]+, pack\/floor [\d.]+/);
  }, 130_000);
});
