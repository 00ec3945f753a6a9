import { describe, expect, it } from 'vitest';
import { notification, scaleIn, scaleOut, scaleOutRequest } from '../test/fixtures/notifications.ts';
import { parseNotification, PayloadError, scalingRequests } from './payload.ts';

const parse = (body: unknown) => scalingRequests(parseNotification(JSON.stringify(body)));

describe('Alertmanager v4 notifications', () => {
  it('yields one request per scaling alert, with its firing episode', () => {
    const r = parse(
      notification([
        { labels: scaleOut('tree-1'), fingerprint: '00000000000000aa', startsAt: '2026-11-25T10:00:00Z' },
        { labels: scaleIn('tree-2') },
      ]),
    );
    expect(r.ignored).toBe(0);
    expect(r.requests).toEqual([
      scaleOutRequest(),
      expect.objectContaining({ kind: 'scale-in', tree: 'tree-2', urgency: 'low' }),
    ]);
  });

  it('reads the size a scale-out asks for, and a forecast reason', () => {
    const at = (desired_subtrees: string, extra: Record<string, string> = {}) =>
      parse(notification([{ labels: scaleOut('tree-1', extra), annotations: { desired_subtrees } }])).requests[0];
    expect(at('3')).toMatchObject({ desiredSubtrees: 3 });
    expect(at('0', { reason: 'forecast', urgency: 'high' })).toMatchObject({ desiredSubtrees: 0, reason: 'forecast' });
    // Empty: the sizing had no inputs; no size, not a size of 0.
    expect(at('')).not.toHaveProperty('desiredSubtrees');
  });

  it.each([['-1'], ['2.5'], ['3 subtrees'], ['1e3'], ['9999999'], ['<no value>']])(
    'refuses a desired_subtrees of %j',
    (v) => {
      expect(() => parse(notification([{ labels: scaleOut(), annotations: { desired_subtrees: v } }]))).toThrow(
        /desired_subtrees/,
      );
    },
  );

  it('ignores alerts that are not scaling decisions', () => {
    const r = parse(notification([{ labels: { alertname: 'HighCPUUsage', component: 'node', node_id: 'x' } }]));
    expect(r).toEqual({ requests: [], ignored: 1 });
  });

  it.each([
    ['a tree_id with CR/LF', scaleOut('tree-1\r\nFLUSHALL'), /bad tree_id/],
    ['a tree_id with shell characters', scaleOut('tree-1;rm -rf /'), /bad tree_id/],
    ['a tree_id with a key separator', scaleOut('tree:1'), /bad tree_id/],
    ['an uppercase tree_id', scaleOut('Tree-1'), /bad tree_id/],
    ['no tree_id', { ...scaleOut(), tree_id: undefined as unknown as string }, /tree_id/],
    ['an unknown reason', scaleOut('tree-1', { reason: 'whim' }), /reason/],
    ['a scale-in with high urgency', { ...scaleIn(), urgency: 'high' }, /urgency/],
    ['a non-scaling component', scaleOut('tree-1', { component: 'node' }), /component/],
  ])('refuses %s', (_what, labels, message) => {
    expect(() => parse(notification([{ labels: JSON.parse(JSON.stringify(labels)) }]))).toThrow(message);
  });

  it.each([
    ['malformed JSON', '{"version": "4",', /not JSON/],
    ['a wrong version', JSON.stringify({ ...notification([{ labels: scaleOut() }]), version: '3' }), /version/],
    [
      'an unknown field',
      JSON.stringify({ ...notification([{ labels: scaleOut() }]), extra: 1 }),
      /extra|Unrecognized/i,
    ],
    ['a bad fingerprint', JSON.stringify(notification([{ labels: scaleOut(), fingerprint: 'zz' }])), /fingerprint/],
    ['a bad startsAt', JSON.stringify(notification([{ labels: scaleOut(), startsAt: 'yesterday' }])), /startsAt/],
    ['a missing alerts array', JSON.stringify({ ...notification([]), alerts: undefined }), /alerts/],
  ])('refuses %s with a clear reason', (_what, body, message) => {
    expect(() => scalingRequests(parseNotification(body))).toThrow(PayloadError);
    expect(() => scalingRequests(parseNotification(body))).toThrow(message);
  });
});

describe('fuzz: random and mutated payloads', () => {
  // A small deterministic PRNG, so a failure reproduces.
  let seed = 42;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)]!;
  const junk = () =>
    pick<unknown>([
      null,
      0,
      -1,
      1e308,
      '',
      'x'.repeat(2000),
      '\r\n',
      '\u0000',
      [],
      {},
      true,
      'tree-1',
      '0000000000000000',
      { a: [1] },
    ]);

  function mutate(v: unknown, depth = 0): unknown {
    if (depth > 6 || rand() < 0.08) return junk();
    if (Array.isArray(v)) return rand() < 0.1 ? [] : v.map((x) => mutate(x, depth + 1));
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        const r = rand();
        if (r < 0.05) continue;
        out[r < 0.08 ? `${k}_` : k] = mutate(x, depth + 1);
      }
      return out;
    }
    return v;
  }

  it('5,000 payloads: only PayloadError or a valid result, and no bad tree id ever passes', () => {
    const base = notification([{ labels: scaleOut('tree-1') }, { labels: scaleIn('tree-2') }]);
    let accepted = 0;
    for (let i = 0; i < 5000; i++) {
      const body =
        i % 10 === 0
          ? String.fromCharCode(...Array.from({ length: 64 }, () => Math.floor(rand() * 256)))
          : JSON.stringify(mutate(base));
      try {
        const r = scalingRequests(parseNotification(body));
        accepted++;
        for (const q of r.requests) expect(q.tree).toMatch(/^[a-z0-9][a-z0-9-]{0,62}$/);
      } catch (err) {
        expect(err).toBeInstanceOf(PayloadError);
      }
    }
    // Mutations are mostly fatal; the untouched payload must still pass.
    expect(accepted).toBeLessThan(5000);
    expect(parse(base).requests).toHaveLength(2);
  });
});
