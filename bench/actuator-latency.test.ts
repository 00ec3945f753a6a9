import { describe, expect, it } from 'vitest';
import { runCanopy } from '../test/canopy.ts';
import { workload } from './actuator-latency.ts';

describe('bench actuator workload', () => {
  it('has the asked share of distinct episodes; every other body is an exact repeat of one sent before', () => {
    const w = workload(1000, 90, { seed: 7, treePrefix: 'bench', fingerprintBase: 0x100, trees: 5 });
    expect(w.bodies).toHaveLength(1000);
    expect(w.episodes).toHaveLength(100);
    expect(new Set(w.bodies).size).toBe(100);
    for (const b of w.bodies) {
      const n = JSON.parse(b.toString('utf8'));
      expect(n.version).toBe('4');
      expect(n.alerts).toHaveLength(1);
    }
    expect(new Set(w.episodes.map((e) => `${e.fingerprint}@${e.startsAt}`)).size).toBe(100);
    expect(new Set(w.episodes.map((e) => e.tree)).size).toBe(5);
    // Same seed, same bytes: both servers get the same requests.
    expect(
      workload(1000, 90, { seed: 7, treePrefix: 'bench', fingerprintBase: 0x100, trees: 5 }).bodies.map(String),
    ).toEqual(w.bodies.map(String));
  });
});

// A smoke run at small size against the real actuator and a real Redis. The
// latency target is judged by the full run, not here.
describe('canopy bench actuator (small)', () => {
  it('drives both servers, finds one decision per distinct episode and ends with a RATIO line', async () => {
    const r = await runCanopy(['bench', 'actuator', '--notifications', '500', '--clients', '10'], 120_000);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.at(-1)).toMatch(/^RATIO \d+\.\d+$/);
    expect(Number(lines.at(-1)!.split(' ')[1])).toBeGreaterThan(0);
    expect(r.stdout).toMatch(/workload: 500 Alertmanager v4 notifications, 50 distinct firing episodes/);
    expect(r.stdout).toMatch(/exactly once: (\d+) dry-run actions in the journal for \1 distinct episodes .*: ok\n/);
  });
});
