import type { Redis } from 'ioredis';
import { z } from 'zod';
import {
  type KeyframeRequestEvent,
  keyframeRequestEventSchema,
  type SessionEvent,
  type TopologyEvent,
} from './events.ts';
import {
  clearEgressLoad,
  type EgressCandidate,
  type EgressLoad,
  egressCandidates,
  getEgressLoad,
  putEgressLoad,
} from './egress-load.ts';
import { assertId, assertNodeType, ID_PATTERN, isValidId, TopologyInputError, type NodeType } from './ids.ts';
import { evalFenced, type Fence } from './fence.ts';
import { keys } from './keys.ts';

/**
 * Typed reads and writes of the topology. Writes that belong together run in
 * one MULTI or Lua script; every id is checked before a key is built; every
 * value read back is validated, and a bad one is reported and skipped.
 */

const port = z.coerce.number().int().min(1).max(65535);
const ssrc = z.coerce.number().int().min(0).max(0xffff_ffff);
const host = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[A-Za-z0-9.:-]+$/);

export interface NodeInfo {
  id: string;
  tree: string;
  type: NodeType;
  /** Where the parent sends RTP to this node's forwarder. */
  host: string;
  audioPort: number | null;
  videoPort: number | null;
  httpPort: number;
  draining: boolean;
}
const nodeHashSchema = z.object({
  tree: z.string().regex(ID_PATTERN),
  type: z.enum(['injection', 'relay', 'egress']),
  host,
  audioPort: port.optional(),
  videoPort: port.optional(),
  httpPort: port,
  draining: z.enum(['0', '1']).optional(),
});

/**
 * Where a session's media comes from when not from the injection's built-in
 * source: a WHIP publisher, or plain RTP arriving on two ingest ports.
 */
export type SessionIngest = { kind: 'whip' } | { kind: 'rtp'; audioPort: number; videoPort: number };

export interface SessionInfo {
  id: string;
  audioSsrc: number;
  videoSsrc: number;
  injection: string;
  startedAt: number;
  /** Absent: the built-in source. */
  ingest?: SessionIngest;
}
const sessionHashSchema = z.object({
  audioSsrc: ssrc,
  videoSsrc: ssrc,
  injection: z.string().regex(ID_PATTERN),
  startedAt: z.coerce.number().int().nonnegative(),
  ingest: z.enum(['whip', 'rtp']).optional(),
  ingestAudioPort: port.optional(),
  ingestVideoPort: port.optional(),
});

/** The hash fields recording a session's ingest. */
function ingestFields(i: SessionIngest | undefined): string[] {
  if (!i) return [];
  if (i.kind === 'whip') return ['ingest', 'whip'];
  return [
    'ingest',
    'rtp',
    'ingestAudioPort',
    String(port.parse(i.audioPort)),
    'ingestVideoPort',
    String(port.parse(i.videoPort)),
  ];
}

function ingestOf(h: z.infer<typeof sessionHashSchema>): SessionIngest | null | undefined {
  if (h.ingest === undefined) return undefined;
  if (h.ingest === 'whip') return { kind: 'whip' };
  if (h.ingestAudioPort === undefined || h.ingestVideoPort === undefined) return null;
  return { kind: 'rtp', audioPort: h.ingestAudioPort, videoPort: h.ingestVideoPort };
}

/** A WHEP viewer on an egress node: its session and the pool port its PeerConnection holds. */
export interface ViewerPlacement {
  id: string;
  sessionId: string;
  /** The pool port this viewer holds on its egress node. */
  poolPort: number;
}
const viewerSchema = z
  .object({
    sessionId: z.string().regex(ID_PATTERN),
    poolPort: port,
  })
  .strict();

export type TopologyWarn = (msg: string, detail?: Record<string, unknown>) => void;

export interface NodeRegistration {
  id: string;
  type: NodeType;
  host: string;
  httpPort: number;
  audioPort?: number;
  videoPort?: number;
  /** Attach to this slot in the same transaction (publishes children-added). */
  parentSlot?: string;
}

// Registers slots a node owns. A slot seen before (in the owner's set) is left
// alone: on a restart, a slot the actuator already took stays taken.
// KEYS[1] owned slots, KEYS[2] available slots or '', KEYS[i > 2] the hash of
// slot ARGV[i] (keys.slot: the script spells no key name); ARGV[1] tree, ARGV[2] owner.
const REGISTER_SLOTS = `
local fresh = {}
for i, slot in ipairs(ARGV) do
  if i > 2 and redis.call('SADD', KEYS[1], slot) == 1 then
    redis.call('HSET', KEYS[i], 'tree', ARGV[1], 'owner', ARGV[2])
    if KEYS[2] ~= '' then redis.call('SADD', KEYS[2], slot) end
    table.insert(fresh, slot)
  end
end
return fresh`;

// A session id is taken once per tree: refuse rather than overwrite.
// ARGV[7..] are more field/value pairs (the ingest).
const START_SESSION = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'audioSsrc', ARGV[1], 'videoSsrc', ARGV[2], 'injection', ARGV[3], 'startedAt', ARGV[4])
for i = 7, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('SADD', KEYS[2], ARGV[5])
redis.call('PUBLISH', KEYS[3], ARGV[6])
return 1`;

const END_SESSION = `
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('PUBLISH', KEYS[3], ARGV[2])
return 1`;

// The scripts below run behind `evalFenced` (fence.ts): their own keys and arguments start at index 2.

// KEYS[2] the node's hash; ARGV[2] '0' | '1'.
const SET_DRAINING = `
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('HSET', KEYS[2], 'draining', ARGV[2])
return 1`;

// KEYS[2] the available slots; returns the slot or ''.
const TAKE_SLOT = `
return redis.call('SPOP', KEYS[2]) or ''`;

// KEYS[2] slot hash, KEYS[3] children set, KEYS[4] channel, KEYS[i > 4] parent:{child};
// ARGV[2] tree, ARGV[3] slot, ARGV[4] event, ARGV[i > 4] the children.
const ATTACH = `
local tree = redis.call('HGET', KEYS[2], 'tree')
if not tree then return 'none' end
if tree ~= ARGV[2] then return 'other' end
for i = 5, #ARGV do
  redis.call('SET', KEYS[i], ARGV[3])
  redis.call('SADD', KEYS[3], ARGV[i])
end
redis.call('PUBLISH', KEYS[4], ARGV[4])
return 'ok'`;

// KEYS[2] children set, KEYS[3] channel, KEYS[i > 3] parent:{child};
// ARGV[2] slot, ARGV[3] event, ARGV[i > 3] the children.
const DETACH = `
for i = 4, #ARGV do
  if redis.call('GET', KEYS[i]) == ARGV[2] then redis.call('DEL', KEYS[i]) end
  redis.call('SREM', KEYS[2], ARGV[i])
end
redis.call('PUBLISH', KEYS[3], ARGV[3])
return 1`;

function event(e: TopologyEvent | SessionEvent): string {
  return JSON.stringify(e);
}

export class Topology {
  readonly tree: string;
  constructor(
    private readonly redis: Redis,
    tree: string,
    private readonly warn: TopologyWarn = () => {},
  ) {
    this.tree = assertId('tree', tree);
  }

  // ---- nodes -------------------------------------------------------------

  /** Adds the node to `nodes:{tree}:{type}` with its address and, if given, its parent slot, in one MULTI. */
  async registerNode(r: NodeRegistration): Promise<void> {
    const id = assertId('node', r.id);
    const type = assertNodeType(r.type);
    host.parse(r.host);
    port.parse(r.httpPort);
    if (r.audioPort !== undefined) port.parse(r.audioPort);
    if (r.videoPort !== undefined) port.parse(r.videoPort);
    const slot = r.parentSlot === undefined ? undefined : assertId('slot', r.parentSlot);
    if (slot) await this.assertSlotOfTree(slot);
    const previous = slot ? await this.parentOf(id) : null;

    const fields: Record<string, string> = { tree: this.tree, type, host: r.host, httpPort: String(r.httpPort) };
    if (r.audioPort !== undefined) fields.audioPort = String(r.audioPort);
    if (r.videoPort !== undefined) fields.videoPort = String(r.videoPort);
    const m = this.redis.multi().sadd(keys.nodes(this.tree, type), id).hset(keys.node(id), fields);
    if (slot) {
      if (previous && previous !== slot) {
        m.srem(keys.children(previous), id).publish(
          keys.topologyChannel(previous),
          event({ type: 'children-removed', childIds: [id] }),
        );
      }
      m.set(keys.parent(id), slot)
        .sadd(keys.children(slot), id)
        .publish(keys.topologyChannel(slot), event({ type: 'children-added', childIds: [id] }));
    }
    await exec(m);
  }

  /** Removes a node, its parent link, its viewers, its load record, and tells its parent slot, in one MULTI. */
  async deregisterNode(nodeId: string, type: NodeType): Promise<void> {
    const id = assertId('node', nodeId);
    const parent = await this.parentOf(id);
    const m = this.redis
      .multi()
      .srem(keys.nodes(this.tree, assertNodeType(type)), id)
      .del(keys.node(id), keys.parent(id), keys.viewers(id), keys.egressLoad(id));
    if (parent) {
      m.srem(keys.children(parent), id).publish(
        keys.topologyChannel(parent),
        event({ type: 'children-removed', childIds: [id] }),
      );
    }
    await exec(m);
  }

  async nodeIds(type: NodeType): Promise<string[]> {
    return this.validIds(await this.redis.smembers(keys.nodes(this.tree, type)), `nodes:${type}`);
  }

  /** A node's record, or null when it is absent or unreadable (reported). */
  async getNode(nodeId: string): Promise<NodeInfo | null> {
    const id = assertId('node', nodeId);
    const h = await this.redis.hgetall(keys.node(id));
    if (Object.keys(h).length === 0) return null;
    const r = nodeHashSchema.safeParse(h);
    if (!r.success) {
      this.warn('ignoring a malformed node record', { node: id, error: r.error.message });
      return null;
    }
    const d = r.data;
    return {
      id,
      tree: d.tree,
      type: d.type,
      host: d.host,
      audioPort: d.audioPort ?? null,
      videoPort: d.videoPort ?? null,
      httpPort: d.httpPort,
      draining: d.draining === '1',
    };
  }

  /** The flag an actuator sets before removing an egress node: it then takes no new viewers. */
  async setDraining(nodeId: string, draining: boolean, fence?: Fence): Promise<void> {
    const id = assertId('node', nodeId);
    // Only an existing node gets the flag: HSET alone would create a stub record.
    const ok = await this.fenced(SET_DRAINING, fence, [keys.node(id)], [draining ? '1' : '0']);
    if (ok !== 1) throw new TopologyInputError(`no node ${id}`);
  }

  async isDraining(nodeId: string): Promise<boolean> {
    return (await this.redis.hget(keys.node(assertId('node', nodeId)), 'draining')) === '1';
  }

  async parentOf(nodeId: string): Promise<string | null> {
    const v = await this.redis.get(keys.parent(assertId('node', nodeId)));
    if (v === null) return null;
    if (!isValidId(v)) {
      this.warn('ignoring a malformed parent link', { node: nodeId });
      return null;
    }
    return v;
  }

  // ---- slots -------------------------------------------------------------

  /**
   * Registers the slots a node owns. `advertise` puts new ones in
   * `relay-slots:{tree}:available`; a slot owned before is not re-added.
   * Returns the slots that were new.
   */
  async registerSlots(owner: string, slotIds: string[], advertise: boolean): Promise<string[]> {
    const o = assertId('node', owner);
    for (const s of slotIds) assertId('slot', s);
    const fresh = (await this.redis.eval(
      REGISTER_SLOTS,
      2 + slotIds.length,
      keys.ownedSlots(o),
      advertise ? keys.availableSlots(this.tree) : '',
      ...slotIds.map((s) => keys.slot(s)),
      this.tree,
      o,
      ...slotIds,
    )) as string[];
    return fresh;
  }

  /** Takes a slot out of `relay-slots:{tree}:available`, so the actuator does not hand it out. */
  async withdrawSlot(slot: string): Promise<void> {
    await this.redis.srem(keys.availableSlots(this.tree), assertId('slot', slot));
  }

  /** The actuator's step 3a: one free relay slot taken from `relay-slots:{tree}:available`, or null when none is. */
  async takeSlot(fence: Fence): Promise<string | null> {
    const slot = await this.fenced(TAKE_SLOT, fence, [keys.availableSlots(this.tree)], []);
    if (typeof slot !== 'string' || slot === '') return null;
    if (!isValidId(slot))
      throw new TopologyInputError(`malformed slot id read from relay-slots:${this.tree}:available`);
    return slot;
  }

  async availableSlots(): Promise<string[]> {
    return this.validIds(await this.redis.smembers(keys.availableSlots(this.tree)), 'relay-slots');
  }

  async ownedSlots(owner: string): Promise<string[]> {
    return this.validIds(await this.redis.smembers(keys.ownedSlots(assertId('node', owner))), 'slots');
  }

  async children(slot: string): Promise<string[]> {
    return this.validIds(await this.redis.smembers(keys.children(assertId('slot', slot))), `children:${slot}`);
  }

  /**
   * The actuator's step 3d-3e: parent links, children set and the event, in
   * one script, refused for a slot of another tree (or none) and, given a
   * fence, for a superseded token.
   */
  async attachChildren(slot: string, childIds: string[], fence?: Fence): Promise<void> {
    const s = assertId('slot', slot);
    if (childIds.length === 0) throw new TopologyInputError('no child ids');
    for (const c of childIds) assertId('node', c);
    const r = await this.fenced(
      ATTACH,
      fence,
      [keys.slot(s), keys.children(s), keys.topologyChannel(s), ...childIds.map((c) => keys.parent(c))],
      [this.tree, s, event({ type: 'children-added', childIds }), ...childIds],
    );
    if (r === 'none') throw new TopologyInputError(`no slot ${s}`);
    if (r === 'other') throw new TopologyInputError(`slot ${s} belongs to another tree`);
  }

  /** Undoes attachChildren for children of this slot (a parent link to another slot is left alone), in one script. */
  async detachChildren(slot: string, childIds: string[], fence?: Fence): Promise<void> {
    const s = assertId('slot', slot);
    if (childIds.length === 0) throw new TopologyInputError('no child ids');
    for (const c of childIds) assertId('node', c);
    await this.fenced(
      DETACH,
      fence,
      [keys.children(s), keys.topologyChannel(s), ...childIds.map((c) => keys.parent(c))],
      [s, event({ type: 'children-removed', childIds }), ...childIds],
    );
  }

  private fenced(script: string, fence: Fence | undefined, k: string[], argv: string[]): Promise<unknown> {
    if (fence && fence.tree !== this.tree)
      throw new TopologyInputError(`fence of tree ${fence.tree} used on tree ${this.tree}`);
    return evalFenced(this.redis, script, fence, k, argv);
  }

  private async assertSlotOfTree(slot: string): Promise<void> {
    const tree = await this.redis.hget(keys.slot(slot), 'tree');
    if (tree === null) throw new TopologyInputError(`no slot ${slot}`);
    if (tree !== this.tree) throw new TopologyInputError(`slot ${slot} belongs to another tree`);
  }

  // ---- sessions ----------------------------------------------------------

  /** Records a live session and announces it; false when the id is taken. */
  async startSession(s: Omit<SessionInfo, 'startedAt'>): Promise<boolean> {
    const id = assertId('session', s.id);
    ssrc.parse(s.audioSsrc);
    ssrc.parse(s.videoSsrc);
    const injection = assertId('node', s.injection);
    const r = await this.redis.eval(
      START_SESSION,
      3,
      keys.session(this.tree, id),
      keys.sessions(this.tree),
      keys.sessionsChannel(this.tree),
      String(s.audioSsrc),
      String(s.videoSsrc),
      injection,
      String(Date.now()),
      id,
      event({ type: 'session-started', sessionId: id }),
      ...ingestFields(s.ingest),
    );
    return r === 1;
  }

  /** Ends a session and announces it; false when there was none. */
  async endSession(sessionId: string): Promise<boolean> {
    const id = assertId('session', sessionId);
    const r = await this.redis.eval(
      END_SESSION,
      3,
      keys.session(this.tree, id),
      keys.sessions(this.tree),
      keys.sessionsChannel(this.tree),
      id,
      event({ type: 'session-ended', sessionId: id }),
    );
    return r === 1;
  }

  /** Asks the injection node playing a session for a keyframe (pub/sub: lost when nobody listens, as a PLI may be). */
  async requestKeyframe(injection: string, e: Omit<KeyframeRequestEvent, 'type'>): Promise<void> {
    const r = keyframeRequestEventSchema.safeParse({ type: 'keyframe-request', ...e });
    if (!r.success)
      throw new TopologyInputError(
        `bad keyframe request: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      );
    await this.redis.publish(keys.keyframeRequestsChannel(injection), JSON.stringify(r.data));
  }

  async getSession(sessionId: string): Promise<SessionInfo | null> {
    const id = assertId('session', sessionId);
    const h = await this.redis.hgetall(keys.session(this.tree, id));
    if (Object.keys(h).length === 0) return null;
    const r = sessionHashSchema.safeParse(h);
    if (!r.success) {
      this.warn('ignoring a malformed session record', { session: id, error: r.error.message });
      return null;
    }
    const { ingest: _kind, ingestAudioPort: _a, ingestVideoPort: _v, ...rest } = r.data;
    const ingest = ingestOf(r.data);
    if (ingest === null) {
      this.warn('ignoring a session record with an incomplete ingest', { session: id });
      return null;
    }
    return ingest ? { id, ...rest, ingest } : { id, ...rest };
  }

  /** Every live, readable session of the tree. */
  async sessions(): Promise<SessionInfo[]> {
    const ids = this.validIds(await this.redis.smembers(keys.sessions(this.tree)), 'sessions');
    const out: SessionInfo[] = [];
    for (const id of ids) {
      const s = await this.getSession(id);
      if (s) out.push(s);
    }
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  // ---- egress load (egress-load.ts) ----------------------------------------

  /** An egress node's heartbeat: its pool use and served sessions, gone after `ttlMs` unless written again. */
  putEgressLoad(nodeId: string, load: Omit<EgressLoad, 'at'>, ttlMs: number): Promise<void> {
    return putEgressLoad(this.redis, nodeId, load, ttlMs);
  }

  clearEgressLoad(nodeId: string): Promise<void> {
    return clearEgressLoad(this.redis, nodeId);
  }

  getEgressLoad(nodeId: string): Promise<EgressLoad | null> {
    return getEgressLoad(this.redis, nodeId, this.warn);
  }

  /** The tree's egress nodes with their records (draining flag included) and loads, for placing a viewer. */
  egressCandidates(): Promise<EgressCandidate[]> {
    return egressCandidates(this.redis, this, this.warn);
  }

  // ---- viewers -----------------------------------------------------------

  async putViewer(nodeId: string, v: ViewerPlacement): Promise<void> {
    const id = assertId('viewer', v.id);
    const { id: _id, ...rest } = v;
    const value = viewerSchema.parse(rest);
    await this.redis.hset(keys.viewers(assertId('node', nodeId)), id, JSON.stringify(value));
  }

  async removeViewer(nodeId: string, viewerId: string): Promise<boolean> {
    return (await this.redis.hdel(keys.viewers(assertId('node', nodeId)), assertId('viewer', viewerId))) === 1;
  }

  async viewers(nodeId: string): Promise<ViewerPlacement[]> {
    const h = await this.redis.hgetall(keys.viewers(assertId('node', nodeId)));
    const out: ViewerPlacement[] = [];
    for (const [id, json] of Object.entries(h)) {
      let value: unknown;
      try {
        value = JSON.parse(json);
      } catch {
        value = undefined;
      }
      const r = viewerSchema.safeParse(value);
      if (!isValidId(id) || !r.success) {
        this.warn('ignoring a malformed viewer record', { node: nodeId, viewer: id.slice(0, 80) });
        continue;
      }
      out.push({ id, ...r.data });
    }
    return out;
  }

  private validIds(ids: string[], where: string): string[] {
    const good = ids.filter(isValidId);
    if (good.length !== ids.length)
      this.warn('ignoring malformed ids read from Redis', { where, count: ids.length - good.length });
    return good.sort();
  }
}

async function exec(m: ReturnType<Redis['multi']>): Promise<void> {
  const res = await m.exec();
  if (!res) throw new Error('Redis transaction aborted');
  for (const [err] of res) if (err) throw err;
}
