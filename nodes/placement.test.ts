import { describe, expect, it } from 'vitest';
import type { EgressCandidate } from '../topology/index.ts';
import { chooseEgress, PENDING_GRACE_MS, PendingRedirects } from './placement.ts';

const cand = (
  id: string,
  allocated: number,
  size: number,
  o: { draining?: boolean; sessions?: string[]; ready?: boolean } = {},
): EgressCandidate => ({
  node: {
    id,
    tree: 't',
    type: 'egress',
    host: '127.0.0.1',
    audioPort: 1,
    videoPort: 2,
    httpPort: 3,
    draining: o.draining ?? false,
  },
  load: o.ready === false ? null : { allocated, size, sessions: o.sessions ?? ['s'], at: 1_000 },
});

describe('chooseEgress', () => {
  it('takes the least-used pool by fraction, then the most free ports, then the id', () => {
    expect(chooseEgress([cand('a', 5, 10), cand('b', 2, 10), cand('c', 3, 10)], 's').node?.id).toBe('b');
    expect(chooseEgress([cand('a', 5, 10), cand('b', 10, 20)], 's').node?.id).toBe('b');
    expect(chooseEgress([cand('b', 1, 4), cand('a', 1, 4)], 's').node?.id).toBe('a');
  });

  it('never picks a draining node, one that is not ready, one that does not serve the session, or a full one', () => {
    expect(chooseEgress([cand('a', 9, 10), cand('b', 0, 10, { draining: true })], 's').node?.id).toBe('a');
    expect(chooseEgress([cand('a', 9, 10), cand('b', 0, 10, { ready: false })], 's').node?.id).toBe('a');
    expect(chooseEgress([cand('a', 9, 10), cand('b', 0, 10, { sessions: ['x'] })], 's').node?.id).toBe('a');
    expect(chooseEgress([cand('a', 10, 10), cand('b', 0, 10, { draining: true })], 's')).toEqual({
      node: null,
      why: 'full',
    });
    expect(chooseEgress([cand('a', 0, 10, { draining: true })], 's')).toEqual({ node: null, why: 'not-serving' });
    expect(chooseEgress([], 's')).toEqual({ node: null, why: 'no-egress' });
  });

  it('counts redirects sent after a node last wrote its load as taken ports', () => {
    const p = new PendingRedirects();
    p.add('b', 2_000);
    p.add('b', 2_001);
    // b: 2 + 2 pending of 10 = 40 % against a's 30 %.
    expect(chooseEgress([cand('a', 3, 10), cand('b', 2, 10)], 's', p.count).node?.id).toBe('a');
    // A record written just after them may not have them yet: they still count.
    expect(p.count('b', 2_500)).toBe(2);
    // One written a grace period later has them: pending is gone.
    expect(p.count('b', 2_000 + PENDING_GRACE_MS)).toBe(1);
    expect(p.count('b', 2_001 + PENDING_GRACE_MS)).toBe(0);
    p.add('a', 3_000);
    expect(p.count('a', 2_999)).toBe(1);
    // Redirects on their way never make a node with a free port look full.
    const q = new PendingRedirects();
    for (let i = 0; i < 5; i++) q.add('a', 2_000);
    expect(chooseEgress([cand('a', 9, 10)], 's', q.count).node?.id).toBe('a');
  });
});
