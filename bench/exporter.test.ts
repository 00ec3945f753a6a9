import { describe, expect, it } from 'vitest';
import { runCanopy } from '../test/canopy.ts';

// A smoke run at small size: proves the benchmark works end to end against the
// real node_exporter. The speed and memory targets are judged by the full run.
describe('canopy bench exporter (small)', () => {
  it('scrapes both exporters, survives the churn and ends with a RATIO line', async () => {
    const r = await runCanopy(['bench', 'exporter', '--sessions', '100', '--scrapes', '5', '--churn', '2000'], 120_000);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.at(-1)).toMatch(/^RATIO \d+\.\d+$/);
    expect(Number(lines.at(-1)!.split(' ')[1])).toBeGreaterThan(0);
    expect(r.stdout).toMatch(/egress exposition: 100 sessions, \d+ series/);
    expect(r.stdout).toMatch(/churn: 2000 session start\/stop cycles, media_tree_\* series (\d+) -> \1\n/);
  });
});
