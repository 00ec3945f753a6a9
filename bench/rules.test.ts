import { describe, expect, it } from 'vitest';
import { runCanopy } from '../test/canopy.ts';

// A smoke run at small size against a real backfill and Prometheus; the
// target is judged by the full run, never here.
describe('canopy bench rules (small)', () => {
  it('backfills, times both sides and ends with a RATIO line', async () => {
    const r = await runCanopy(
      [
        'bench',
        'rules',
        '--nodes',
        '20',
        '--trees',
        '2',
        '--minutes',
        '10',
        '--head-minutes',
        '6',
        '--evaluations',
        '1',
        '--interval',
        '1',
      ],
      120_000,
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.at(-1)).toMatch(/^RATIO \d+\.\d+$/);
    expect(r.stdout).toMatch(/fleet: 20 egress nodes in 2 trees, \d+ series/);
    expect(r.stdout).toMatch(/head: the last 6 min through remote write/);
    expect(r.stdout).toMatch(/group media-tree\.scaling: \d+\.\d+ ms/);
    expect(r.stdout).toMatch(/raw reads: the pack's \d+ distinct raw selectors/);
  }, 130_000);
});
