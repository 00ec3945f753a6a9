import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RunningRedis } from '../servers/redis.ts';
import { redisSnapshot } from '../test/redis.ts';
import {
  actuatorKeys,
  DatasetWatch,
  datasetEpoch,
  type KeyframeRequestEvent,
  keys,
  parseEvent,
  readSubtrees,
  Topology,
  TopologyInputError,
  TopologySubscriber,
  topologyEventSchema,
  type TopologyEvent,
} from './index.ts';

let redis: RunningRedis;
let r: Redis;
const warnings: string[] = [];
let topo: Topology;

beforeAll(async () => {
  redis = await startRedis();
  r = new Redis(redis.url);
  topo = new Topology(r, 'tree-1', (m) => warnings.push(m));
});
afterAll(async () => {
  r?.disconnect();
  await redis?.stop();
});

describe('ids', () => {
  it('refuses ids that could bend a key, before touching Redis', async () => {
    expect(() => new Topology(r, 'tree-1\r\nFLUSHALL')).toThrow(TopologyInputError);
    for (const bad of ['', '-a', 'A', 'a:b', 'a b', 'a{b}', 'x'.repeat(64), 'é']) {
      expect(() => keys.parent(bad)).toThrow(/bad node id/);
    }
    expect(keys.nodes('tree-1', 'egress')).toBe('nodes:tree-1:egress');
    expect(() => keys.nodes('tree-1', 'router' as never)).toThrow(/bad node type/);
  });
});

describe('topology store', () => {
  it('registers slots once: a slot taken by the actuator is not re-advertised on restart', async () => {
    expect(await topo.registerSlots('relay-1', ['relay-1-s0', 'relay-1-s1'], true)).toEqual([
      'relay-1-s0',
      'relay-1-s1',
    ]);
    await r.srem(keys.availableSlots('tree-1'), 'relay-1-s0'); // the actuator takes it
    expect(await topo.registerSlots('relay-1', ['relay-1-s0', 'relay-1-s1'], true)).toEqual([]);
    expect(await topo.availableSlots()).toEqual(['relay-1-s1']);
    expect(await topo.ownedSlots('relay-1')).toEqual(['relay-1-s0', 'relay-1-s1']);
  });

  it('registers a node with its parent link and children entry together, and publishes children-added', async () => {
    const sub = new Redis(redis.url);
    const got: TopologyEvent[] = [];
    const s = new TopologySubscriber(sub, { onTopology: (_slot, e) => got.push(e) });
    await s.watchSlots(['relay-1-s0']);
    await topo.registerNode({
      id: 'egress-1',
      type: 'egress',
      host: '127.0.0.1',
      httpPort: 7073,
      audioPort: 5002,
      videoPort: 5004,
      parentSlot: 'relay-1-s0',
    });
    expect(await topo.children('relay-1-s0')).toEqual(['egress-1']);
    expect(await topo.parentOf('egress-1')).toBe('relay-1-s0');
    expect(await topo.nodeIds('egress')).toEqual(['egress-1']);
    expect(await topo.getNode('egress-1')).toMatchObject({
      host: '127.0.0.1',
      audioPort: 5002,
      videoPort: 5004,
      httpPort: 7073,
      draining: false,
    });
    await new Promise((res) => setTimeout(res, 100));
    expect(got).toEqual([{ type: 'children-added', childIds: ['egress-1'] }]);
    await topo.setDraining('egress-1', true);
    expect(await topo.isDraining('egress-1')).toBe(true);
    await topo.deregisterNode('egress-1', 'egress');
    await new Promise((res) => setTimeout(res, 100));
    expect(got[1]).toEqual({ type: 'children-removed', childIds: ['egress-1'] });
    expect(await topo.children('relay-1-s0')).toEqual([]);
    expect(await topo.getNode('egress-1')).toBeNull();
    await s.close();
  });

  it('refuses an unknown slot and bad ids, and changes nothing', async () => {
    const before = await redisSnapshot(r);
    await expect(
      topo.registerNode({
        id: 'egress-2',
        type: 'egress',
        host: '127.0.0.1',
        httpPort: 7073,
        parentSlot: 'no-such-slot',
      }),
    ).rejects.toThrow(/no slot no-such-slot/);
    await expect(
      topo.registerNode({ id: 'egress-2\r\nFLUSHALL', type: 'egress', host: '127.0.0.1', httpPort: 7073 }),
    ).rejects.toThrow(TopologyInputError);
    await expect(topo.attachChildren('relay-1-s0', ['ok-1', 'BAD'])).rejects.toThrow(/bad node id/);
    await expect(
      topo.startSession({ id: 's 1', audioSsrc: 1, videoSsrc: 2, injection: 'injection-1' }),
    ).rejects.toThrow(/bad session id/);
    await expect(topo.setDraining('nobody', true)).rejects.toThrow(/no node nobody/);
    await expect(new Topology(r, 'tree-2').attachChildren('relay-1-s0', ['egress-9'])).rejects.toThrow(/another tree/);
    expect(await redisSnapshot(r)).toBe(before);
  });

  it('starts a session once, lists it, ends it; malformed records read from Redis are skipped and reported', async () => {
    expect(await topo.startSession({ id: 'sess-1', audioSsrc: 111, videoSsrc: 222, injection: 'injection-1' })).toBe(
      true,
    );
    expect(await topo.startSession({ id: 'sess-1', audioSsrc: 5, videoSsrc: 6, injection: 'injection-1' })).toBe(false);
    await r.sadd(keys.sessions('tree-1'), 'Bad Id', 'sess-ghost');
    await r.hset(keys.session('tree-1', 'sess-ghost'), 'audioSsrc', 'x');
    const list = await topo.sessions();
    expect(list.map((s) => [s.id, s.audioSsrc, s.videoSsrc])).toEqual([['sess-1', 111, 222]]);
    expect(warnings.join('|')).toMatch(/malformed ids.*\|.*malformed session record/);
    expect(await topo.endSession('sess-1')).toBe(true);
    expect(await topo.endSession('sess-1')).toBe(false);
  });

  it("records a session's ingest and reads it back; an incomplete one is skipped and reported", async () => {
    const base = { audioSsrc: 1, videoSsrc: 2, injection: 'injection-1' };
    expect(await topo.startSession({ id: 'sess-w', ...base, ingest: { kind: 'whip' } })).toBe(true);
    expect(
      await topo.startSession({ id: 'sess-r', ...base, ingest: { kind: 'rtp', audioPort: 5002, videoPort: 5004 } }),
    ).toBe(true);
    expect((await topo.getSession('sess-w'))?.ingest).toEqual({ kind: 'whip' });
    expect((await topo.getSession('sess-r'))?.ingest).toEqual({ kind: 'rtp', audioPort: 5002, videoPort: 5004 });
    await expect(
      topo.startSession({ id: 'sess-x', ...base, ingest: { kind: 'rtp', audioPort: 0, videoPort: 5004 } }),
    ).rejects.toThrow();
    expect(await r.exists(keys.session('tree-1', 'sess-x'))).toBe(0);
    await r.hdel(keys.session('tree-1', 'sess-r'), 'ingestVideoPort');
    expect(await topo.getSession('sess-r')).toBeNull();
    expect(warnings.at(-1)).toMatch(/incomplete ingest/);
    for (const id of ['sess-w', 'sess-r']) await topo.endSession(id);
  });

  it('keeps viewer placements and skips malformed ones', async () => {
    await topo.putViewer('egress-5', {
      id: 'v-1',
      sessionId: 'sess-1',
      poolPort: 20000,
    });
    await r.hset(keys.viewers('egress-5'), 'v-2', '{not json');
    expect((await topo.viewers('egress-5')).map((v) => v.id)).toEqual(['v-1']);
    expect(await topo.removeViewer('egress-5', 'v-1')).toBe(true);
  });
});

describe('events', () => {
  it('validates pub/sub payloads', () => {
    expect(parseEvent(topologyEventSchema, '{"type":"children-added","childIds":["egress-1"]}')).toEqual({
      ok: true,
      event: { type: 'children-added', childIds: ['egress-1'] },
    });
    for (const bad of [
      'nope',
      '{}',
      '{"type":"children-added","childIds":[]}',
      '{"type":"children-added","childIds":["a\\r\\nFLUSHALL"]}',
      '{"type":"x","childIds":["a"]}',
      '{"type":"children-added","childIds":["a"],"extra":1}',
    ]) {
      expect(parseEvent(topologyEventSchema, bad).ok).toBe(false);
    }
  });
});

describe('keyframe requests', () => {
  const good = { sessionId: 'sess-1', nodeId: 'egress-1', reason: 'pli', at: 1_700_000_000_000 } as const;

  it('reach the injection node named, validated; a bad payload is reported and dropped, a bad request publishes nothing', async () => {
    const sub = new Redis(redis.url);
    const got: KeyframeRequestEvent[] = [];
    const subWarnings: string[] = [];
    const s = new TopologySubscriber(sub, { onKeyframeRequest: (e) => got.push(e) }, (m) => subWarnings.push(m));
    await s.watchKeyframeRequests('injection-1');
    // Another injection's channel: not ours to hear.
    await topo.requestKeyframe('injection-2', { ...good, sessionId: 'other' });
    await topo.requestKeyframe('injection-1', good);
    await topo.requestKeyframe('injection-1', { ...good, reason: 'fir', at: good.at + 1 });
    const channel = keys.keyframeRequestsChannel('injection-1');
    expect(channel).toBe('keyframe-requests:injection-1');
    for (const bad of [
      'nope',
      JSON.stringify({ ...good }), // no type
      JSON.stringify({ type: 'keyframe-request', ...good, reason: 'nack' }),
      JSON.stringify({ type: 'keyframe-request', ...good, sessionId: 'a\r\nFLUSHALL' }),
      JSON.stringify({ type: 'keyframe-request', ...good, at: -1 }),
      JSON.stringify({ type: 'keyframe-request', ...good, at: 1.5 }),
      JSON.stringify({ type: 'keyframe-request', ...good, extra: 1 }),
    ])
      await r.publish(channel, bad);
    // One good event after the bad ones: when it is here, everything before it was handled.
    await topo.requestKeyframe('injection-1', { ...good, at: good.at + 2 });
    await expect.poll(() => got.length, { timeout: 5_000 }).toBe(3);
    expect(got).toEqual([
      { type: 'keyframe-request', ...good },
      { type: 'keyframe-request', ...good, reason: 'fir', at: good.at + 1 },
      { type: 'keyframe-request', ...good, at: good.at + 2 },
    ]);
    expect(subWarnings).toEqual(Array(7).fill('ignoring a bad keyframe request'));

    // Refused before Redis sees anything.
    const before = got.length;
    await expect(topo.requestKeyframe('injection-1', { ...good, reason: 'bogus' as never })).rejects.toThrow(
      TopologyInputError,
    );
    await expect(topo.requestKeyframe('injection-1', { ...good, nodeId: 'Bad Id' })).rejects.toThrow(
      /bad keyframe request: nodeId/,
    );
    expect(() => keys.keyframeRequestsChannel('inj:1')).toThrow(/bad node id/);
    await topo.requestKeyframe('injection-1', { ...good, at: good.at + 3 });
    await expect.poll(() => got.length, { timeout: 5_000 }).toBe(before + 1);
    expect(got.at(-1)?.at).toBe(good.at + 3);
    await s.close();
  });
});

describe('actuator subtrees', () => {
  it('reads the records the actuator wrote and skips (and reports) malformed ones', async () => {
    const seen: string[] = [];
    await r.hset(actuatorKeys.subtrees('tree-9'), {
      'subtree-1': JSON.stringify({ slot: 'relay-1-s1', createdAt: 5, nodes: ['subtree-1-egress-1'] }),
      'subtree-2': '{not json',
      'subtree-3': JSON.stringify({ slot: 'relay-1-s2', createdAt: 6, nodes: ['BAD:ID'] }),
      'Bad:Id': JSON.stringify({ slot: 'relay-1-s3', createdAt: 7, nodes: [] }),
    });
    const got = await readSubtrees(r, 'tree-9', (_m, d) => seen.push(String(d?.subtree)));
    expect([...got]).toEqual([['subtree-1', { slot: 'relay-1-s1', createdAt: 5, nodes: ['subtree-1-egress-1'] }]]);
    expect(seen.sort()).toEqual(['Bad:Id', 'subtree-2', 'subtree-3']);
    await expect(readSubtrees(r, 'Tree 9')).rejects.toThrow(TopologyInputError);
  });
});

describe('dataset epoch', () => {
  it('stays while the data does; a FLUSHALL gives a new one, which two watchers both notice once', async () => {
    const e = await datasetEpoch(r);
    expect(e).toMatch(/^[0-9a-f]{16}$/);
    expect(await datasetEpoch(r)).toBe(e);
    const a = new DatasetWatch(r);
    const b = new DatasetWatch(r);
    await a.begin();
    await b.begin();
    expect(await a.changed()).toBe(false);
    await r.set('unrelated', '1');
    expect(await a.changed()).toBe(false);
    await r.flushall();
    expect(await a.changed()).toBe(true);
    const after = await r.get(keys.datasetEpoch);
    expect(after).not.toBe(e);
    expect(await b.changed()).toBe(true);
    expect(await a.changed()).toBe(false);
    expect(await b.changed()).toBe(false);
    // A watcher that never began learns the epoch on its first look, and reports no loss for it.
    expect(await new DatasetWatch(r).changed()).toBe(false);
  });
});
