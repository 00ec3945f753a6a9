import { describe, expect, it } from 'vitest';
import { byUrgency, decide, episodeOf, type Policy, type TreeState } from './decide.ts';
import { scaleOutRequest } from '../test/fixtures/notifications.ts';
import type { ScalingRequest } from './payload.ts';

const MIN = 60_000;
const policy: Policy = {
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
