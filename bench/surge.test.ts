import { describe, expect, it } from 'vitest';
import { resolveShape } from '../stack/demo-config.ts';
import type { ScenarioReport, SurgeSample } from '../stack/scenario.ts';
import { figures } from './surge.ts';

// The surge scenario's shape: baseline 2 nodes of 20 ports, subtrees of 2 such nodes.
const shape = resolveShape({ egressNodes: 2, egressPoolSize: 20, subtreeSize: 2, subtreePoolSize: 20 });
const at = (s: number) => 1_000_000 + s * 1000;
const sample = (s: number, placed: number, waiting: number, subtrees: number): SurgeSample => {
  const nodes = 2 + 2 * subtrees;
  return { at: at(s), placed, waiting, allocated: placed + 2 * nodes, ports: 20 * nodes, subtrees };
};

function report(timeline: SurgeSample[], leftAt: number, backAt: number): ScenarioReport {
  return {
    events: [{ at: backAt, what: 'subtrees: 0' }],
    firing: {},
    subtrees: {},
    scrapedUp: [],
    placed: {},
    maxPool: [],
    media: { audio: { packets: 0, expected: 0, lost: 0 }, video: { packets: 0, expected: 0, lost: 0 } },
    endedByServer: 0,
    surge: { refusals: 5, refusedViewers: 3, servedAfterRefusal: 3, setupFailures: 0, gaveUp: 0, timeline, leftAt },
  };
}

describe('surge figures', () => {
  it('times demand past 85 % to room for the whole peak, and counts what the peak needed', () => {
    const timeline = [
      sample(0, 10, 0, 0),
      // 31 + 4 of 40 ports: above 85 % (demand counts the waiting viewers).
      sample(10, 30, 1, 0),
      sample(20, 36, 20, 1),
      // 3 subtrees: 160 ports, 108 viewers + 16 mountpoint ports in.
      sample(30, 70, 38, 3),
      sample(40, 108, 0, 3),
    ];
    const f = figures('level', report(timeline, at(60), at(90)), shape, 0.85, at(0), []);
    expect(f.timeToCapacityS).toBe(20);
    expect(f.peakSubtrees).toBe(3);
    // 108 viewers: 3 subtrees keep them under 85 % (124 of 160 ports), 2 merely fit (120 of 120).
    expect(f.neededSubtrees).toBe(3);
    expect(f.fitSubtrees).toBe(2);
    expect(f.returnToBaselineS).toBe(30);
    expect(f.refusedViewers).toBe(3);
  });

  it('never: no room for the peak within the run', () => {
    const timeline = [sample(0, 30, 1, 0), sample(10, 72, 36, 1), sample(20, 72, 36, 1)];
    const f = figures('episode', report(timeline, at(30), at(40)), shape, 0.85, at(0), []);
    expect(f.timeToCapacityS).toBeNull();
    expect(f.peakSubtrees).toBe(1);
  });
});
