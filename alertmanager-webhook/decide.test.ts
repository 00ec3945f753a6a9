import { describe, expect, it } from 'vitest';
import { byUrgency, decide, episodeOf, type Policy, type TreeState } from './decide.ts';
import { scaleOutRequest } from '../test/fixtures/notifications.ts';
import type { ScalingRequest } from './payload.ts';

const MIN = 60_000;
const policy: Policy = {
  scaling: 'level',
  maxStepSubtrees: 4,
  minSubtrees: 0,
  maxSubtrees: 3,
  globalMaxSubtrees: 5,
  scaleOutCooldownMs: 5 * MIN,
  scaleInStabilisationMs: 15 * MIN,
  protectNewSubtreeMs: 30 * MIN,
  paused: false,
};
const out = scaleOutRequest;
const inn = (over: Partial<ScalingRequest> = {}): ScalingRequest =>
  out({ kind: 'scale-in', urgency: 'low', reason: 'low_usage', ...over });
const tree = (over: Partial<TreeState> = {}): TreeState => ({
  desired: 1,
  subtrees: [],
  lastScaleOutAt: null,
  lastScaleInAt: null,
  episodesActedOn: new Set(),
  ...over,
});
const NOW = 1_000 * MIN;

describe('decide', () => {
  it('a firing scale-out raises the desired count by one', () => {
    expect(decide(out(), tree(), 1, policy, NOW)).toMatchObject({ action: 'scale-out', desired: 2 });
  });

  it('the same firing episode again is a duplicate', () => {
    const d = decide(out(), tree({ episodesActedOn: new Set([episodeOf(out())]) }), 1, policy, NOW);
    expect(d).toEqual({ action: 'none', why: 'episode already acted on', duplicate: true });
  });

  it('a new episode of the same alert (new startsAt) may act again, after the cooldown', () => {
    const t = tree({ episodesActedOn: new Set([episodeOf(out())]), lastScaleOutAt: NOW - 6 * MIN });
    expect(decide(out({ startsAt: '2026-11-25T11:00:00.000Z' }), t, 1, policy, NOW)).toMatchObject({
      action: 'scale-out',
    });
  });

  it('a resolved scale-out removes nothing', () => {
    expect(decide(out({ status: 'resolved' }), tree({ desired: 2 }), 2, policy, NOW).action).toBe('none');
  });

  it.each([
    ['the tree maximum', tree({ desired: 3 }), 3, /tree's maximum of 3/],
    ['the global maximum', tree({ desired: 1 }), 5, /global maximum of 5/],
    ['the cooldown', tree({ lastScaleOutAt: NOW - 4 * MIN }), 1, /cooldown \(60 s left\)/],
  ])('a scale-out stops at %s', (_what, t, total, why) => {
    const d = decide(out(), t, total, policy, NOW);
    expect(d.action).toBe('none');
    expect((d as { why: string }).why).toMatch(why);
  });

  it('paused: nothing, and the episode stays open for later', () => {
    expect(decide(out(), tree(), 1, { ...policy, paused: true }, NOW)).toEqual({ action: 'none', why: 'paused' });
  });

  it('a scale-in removes the least-loaded unprotected subtree', () => {
    const t = tree({
      desired: 3,
      lastScaleOutAt: NOW - 60 * MIN,
      subtrees: [
        { subtree: 'tree-1-st-1', createdAt: NOW - 90 * MIN, viewers: 40 },
        { subtree: 'tree-1-st-2', createdAt: NOW - 80 * MIN, viewers: 3 },
        { subtree: 'tree-1-st-3', createdAt: NOW - 10 * MIN, viewers: 0 },
      ],
    });
    expect(decide(inn(), t, 3, policy, NOW)).toMatchObject({ action: 'scale-in', desired: 2, subtree: 'tree-1-st-2' });
  });

  it.each([
    ['the minimum', tree({ desired: 0 }), /minimum of 0/],
    [
      'the stabilisation window after a scale-out',
      tree({ desired: 2, lastScaleOutAt: NOW - 14 * MIN }),
      /stabilisation \(60 s left\)/,
    ],
    [
      'protected new subtrees',
      tree({ desired: 1, subtrees: [{ subtree: 'tree-1-st-1', createdAt: NOW - 29 * MIN, viewers: 0 }] }),
      /protected/,
    ],
  ])('a scale-in stops at %s', (_what, t, why) => {
    const d = decide(inn(), t, t.desired, policy, NOW);
    expect(d.action).toBe('none');
    expect((d as { why: string }).why).toMatch(why);
  });
});

describe('decide, level scaling: converge to the size asked for', () => {
  const wide: Policy = { ...policy, maxSubtrees: 10, globalMaxSubtrees: 20 };
  const sized = (desiredSubtrees: number, over: Partial<ScalingRequest> = {}) => out({ desiredSubtrees, ...over });

  it('a tree short by three gets three at once', () => {
    expect(decide(sized(4), tree({ desired: 1 }), 1, wide, NOW)).toMatchObject({ action: 'scale-out', desired: 4 });
  });

  it.each([
    ['the per-step limit', tree({ desired: 0 }), 0, wide, 4],
    ['the tree maximum', tree({ desired: 3 }), 3, { ...wide, maxSubtrees: 6 }, 6],
    ['the global maximum', tree({ desired: 3 }), 18, wide, 5],
  ])('a larger size is bounded by %s', (_what, t, total, p, want) => {
    const d = decide(sized(9), t, total, p, NOW);
    expect(d).toMatchObject({ action: 'scale-out', desired: want });
    expect((d as { why: string }).why).toMatch(/9 subtrees asked for/);
  });

  it('acts again within the same firing episode once the cooldown is over, while the tree is short', () => {
    const t = tree({ desired: 4, episodesActedOn: new Set([episodeOf(out())]), lastScaleOutAt: NOW - 6 * MIN });
    expect(decide(sized(9), t, 4, wide, NOW)).toMatchObject({ action: 'scale-out', desired: 8 });
    const cooling = { ...t, lastScaleOutAt: NOW - 4 * MIN };
    expect(decide(sized(9), cooling, 4, wide, NOW)).toMatchObject({
      action: 'none',
      why: expect.stringMatching(/cooldown/),
    });
  });

  it.each(['port_pool', 'forecast'])('never past the size: a tree at it, on %s, needs nothing', (reason) => {
    for (const desired of [3, 4]) {
      const d = decide(sized(3, { reason }), tree({ desired, lastScaleOutAt: NOW - 60 * MIN }), desired, wide, NOW);
      expect(d).toEqual({ action: 'none', why: 'at the 3 subtrees asked for', duplicate: true });
    }
  });

  it('a request recorded before the last scale-out (a retry, an HA copy) is a duplicate, even after the cooldown', () => {
    const t = tree({ desired: 2, lastScaleOutAt: NOW - 10 * MIN });
    expect(decide(sized(5, { receivedAt: NOW - 11 * MIN }), t, 2, wide, NOW)).toMatchObject({ duplicate: true });
    expect(decide(sized(5, { receivedAt: NOW - 1 * MIN }), t, 2, wide, NOW)).toMatchObject({
      action: 'scale-out',
      desired: 5,
    });
  });

  it('a storm of repeats, HA copies and retries ends at the size, never past it', () => {
    // A tree short by three; per-step limit 1, so it takes three cooldowns.
    let t = tree({ desired: 2 });
    let total = 2;
    const p = { ...wide, maxStepSubtrees: 1 };
    const seen: number[] = [];
    for (let i = 0; i < 200; i++) {
      const now = NOW + i * 30_000;
      // Each tick: a repeat, its HA copy, and a retry of a request recorded a minute earlier.
      for (const receivedAt of [now, now, now - 60_000]) {
        const d = decide(sized(5, { receivedAt }), t, total, p, now);
        if (d.action === 'scale-out') {
          total += d.desired - t.desired;
          t = { ...t, desired: d.desired, lastScaleOutAt: now + 1, episodesActedOn: new Set([episodeOf(out())]) };
        }
        seen.push(t.desired);
      }
    }
    expect(Math.max(...seen)).toBe(5);
    expect(t.desired).toBe(5);
    // One step per cooldown (5 min): at 2, 3 and 4 only.
    expect(new Set(seen)).toEqual(new Set([3, 4, 5]));
  });

  it('without a size larger than the tree, a non-capacity reason is one subtree per episode', () => {
    const cpu = sized(1, { reason: 'cpu', urgency: 'high' });
    expect(decide(cpu, tree({ desired: 2 }), 2, wide, NOW)).toMatchObject({ action: 'scale-out', desired: 3 });
    const acted = tree({ desired: 3, episodesActedOn: new Set([episodeOf(cpu)]) });
    expect(decide(cpu, acted, 3, wide, NOW)).toMatchObject({ duplicate: true });
  });

  it('without a size at all (no sizing inputs), one subtree per episode', () => {
    expect(decide(out(), tree({ desired: 2 }), 2, wide, NOW)).toMatchObject({ action: 'scale-out', desired: 3 });
  });

  it('episode scaling ignores the size: one subtree per episode, as before sizing', () => {
    const ep = { ...wide, scaling: 'episode' as const };
    expect(decide(sized(9), tree({ desired: 1 }), 1, ep, NOW)).toMatchObject({ action: 'scale-out', desired: 2 });
    const acted = tree({ desired: 2, episodesActedOn: new Set([episodeOf(out())]), lastScaleOutAt: NOW - 60 * MIN });
    expect(decide(sized(9), acted, 2, ep, NOW)).toMatchObject({ duplicate: true });
  });

  it('a size never makes a scale-in, and paused acts on nothing', () => {
    expect(decide(sized(0), tree({ desired: 3 }), 3, wide, NOW).action).toBe('none');
    expect(decide(sized(9), tree({ desired: 1 }), 1, { ...wide, paused: true }, NOW)).toEqual({
      action: 'none',
      why: 'paused',
    });
  });
});

describe('byUrgency', () => {
  it('orders critical, high, low, keeping arrival order within each', () => {
    const items = [
      inn({ tree: 'a' }),
      out({ tree: 'b', urgency: 'high' }),
      out({ tree: 'c' }),
      out({ tree: 'd', urgency: 'high' }),
    ].map((request) => ({ request }));
    expect(byUrgency(items).map((i) => i.request.tree)).toEqual(['c', 'b', 'd', 'a']);
  });
});
