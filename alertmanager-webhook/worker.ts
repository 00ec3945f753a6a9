import type { Redis } from 'ioredis';
import { actuatorKeys, assertId, keys, Topology } from '../topology/index.ts';
import { byUrgency, decide, episodeOf, type Decision, type Policy } from './decide.ts';
import type { InboxEntry } from './inbox.ts';
import { fencedWrite, TreeLock, type Command, type Lease } from './lock.ts';
import type { ScalingRequest } from './payload.ts';
import type { Provisioner, SubtreeNode } from './provisioners/provisioner.ts';
import { ActuatorStore, type FailureReason, type JournalEntry, type SubtreeRecord } from './store.ts';
import type { TargetFiles } from './targets.ts';

export interface WorkerOptions {
  redis: Redis;
  provisioner: Provisioner;
  targets: TargetFiles;
  policy: Policy;
  /** Egress nodes per subtree. */
  subtreeSize: number;
  dryRun: boolean;
  owner: string;
  lockTtlMs: number;
  readyTimeoutMs: number;
  drainTimeoutMs: number;
  /** How often running subtrees and recorded ones are compared and mended. */
  reconcileIntervalMs?: number;
  log: (level: 'info' | 'warn' | 'error', msg: string, detail?: Record<string, unknown>) => void;
  onAction?: (e: JournalEntry & { kind: 'scale-out' | 'scale-in' }) => void;
  onDuplicate?: () => void;
  onLockContention?: () => void;
  now?: () => number;
}

/**
 * Acts on the inbox: one request at a time per tree under the tree's lock,
 * decisions as desired state, every step idempotent and recorded in flight,
 * so a restarted actuator rolls a half-done scale-out back and finishes a
 * half-done scale-in.
 */
export class Worker {
  private readonly store: ActuatorStore;
  private readonly lock: TreeLock;
  private readonly now: () => number;
  private stopped = false;

  constructor(private readonly o: WorkerOptions) {
    this.store = new ActuatorStore(o.redis, (m, d) => o.log('warn', m, d));
    this.lock = new TreeLock(o.redis, o.owner, o.lockTtlMs);
    this.now = o.now ?? Date.now;
  }

  stop(): void {
    this.stopped = true;
  }

  /** Reads the inbox until stopped: first what this consumer had not finished, then new entries. */
  async run(): Promise<void> {
    const reader = this.o.redis.duplicate();
    reader.on('error', () => {});
    let ready = false;
    let nextReconcile = this.now() + (this.o.reconcileIntervalMs ?? 60_000);
    try {
      while (!this.stopped) {
        try {
          // Redis may come later than the actuator: set up, recover, then read.
          if (!ready) {
            await this.o.redis
              .xgroup('CREATE', actuatorKeys.inbox, actuatorKeys.inboxGroup, '0', 'MKSTREAM')
              .catch((err: Error) => {
                if (!/BUSYGROUP/.test(err.message)) throw err;
              });
            await this.recoverAll();
            ready = true;
          }
          if (this.now() >= nextReconcile) {
            nextReconcile = this.now() + (this.o.reconcileIntervalMs ?? 60_000);
            await this.reconcile();
          }
          await this.claimAbandoned();
          const pending = await this.read(reader, '0', 0);
          const fresh = pending.length ? [] : await this.read(reader, '>', 1_000);
          for (const [id, entry] of [...pending, ...fresh]) {
            if (this.stopped) break;
            await this.handleEntry(id, entry);
          }
        } catch (err) {
          // A Redis that came back empty has lost the consumer group: set up again.
          if (/NOGROUP/.test((err as Error).message)) ready = false;
          this.o.log('warn', 'worker step failed; retrying', { err: (err as Error).message });
          await sleep(1_000);
        }
      }
    } finally {
      reader.disconnect();
    }
  }

  /**
   * Entries another actuator took and did not finish (it crashed): taken over
   * once idle longer than a lock TTL, when that actuator can no longer be acting.
   */
  private async claimAbandoned(): Promise<void> {
    await this.o.redis.call(
      'XAUTOCLAIM',
      actuatorKeys.inbox,
      actuatorKeys.inboxGroup,
      this.o.owner,
      this.o.lockTtlMs,
      '0-0',
      'COUNT',
      100,
    );
  }

  private async read(reader: Redis, from: '0' | '>', blockMs: number): Promise<Array<[string, InboxEntry | null]>> {
    const args: Array<string | number> = ['GROUP', actuatorKeys.inboxGroup, this.o.owner, 'COUNT', 10];
    if (blockMs > 0) args.push('BLOCK', blockMs);
    const res = (await reader.call('XREADGROUP', ...args, 'STREAMS', actuatorKeys.inbox, from)) as Array<
      [string, Array<[string, string[]]>]
    > | null;
    const rows = res?.[0]?.[1] ?? [];
    return rows.map(([id, fields]) => [id, parseEntry(fields[1])]);
  }

  /** Acts on every request of one notification, then acknowledges it; a failure leaves it pending for a retry. */
  async handleEntry(id: string, entry: InboxEntry | null): Promise<void> {
    if (entry) {
      for (const { request } of byUrgency(entry.requests.map((request) => ({ request })))) await this.handle(request);
    } else {
      this.o.log('warn', 'dropping an unreadable inbox entry', { id });
    }
    await this.o.redis.xack(actuatorKeys.inbox, actuatorKeys.inboxGroup, id);
    await this.o.redis.xdel(actuatorKeys.inbox, id);
  }

  async handle(r: ScalingRequest): Promise<Decision> {
    const lease = await this.acquire(r.tree);
    try {
      await this.recover(r.tree, lease);
      const topo = new Topology(this.o.redis, r.tree);
      const state = await this.store.treeState(r.tree, (nodes) => this.viewers(topo, nodes));
      const policy = { ...this.o.policy, paused: this.o.policy.paused || (await this.store.paused()) };
      const d = decide(r, state, await this.store.totalDesired(), policy, this.now());
      if (d.action === 'none') {
        if (d.duplicate) this.o.onDuplicate?.();
        else await this.journal({ tree: r.tree, kind: r.kind, result: 'skipped', why: d.why });
        return d;
      }
      if (this.o.dryRun) {
        await fencedWrite(this.o.redis, lease, [['SADD', actuatorKeys.episodes(r.tree), episodeOf(r)]]);
        await this.journal({
          tree: r.tree,
          kind: d.action,
          result: 'dry-run',
          why: d.why,
          subtree: d.action === 'scale-in' ? d.subtree : undefined,
        });
        return d;
      }
      if (d.action === 'scale-out') await this.scaleOut(lease, r, d.desired, d.why);
      else await this.scaleIn(lease, r, d.subtree, d.desired, d.why);
      return d;
    } finally {
      await this.lock.release(lease).catch(() => {});
    }
  }

  private async acquire(tree: string): Promise<Lease> {
    const deadline = this.now() + this.o.lockTtlMs * 2;
    for (;;) {
      const lease = await this.lock.acquire(tree);
      if (lease) return lease;
      this.o.onLockContention?.();
      if (this.now() > deadline) throw new Error(`tree ${tree} stays locked by another actuator`);
      await sleep(200);
    }
  }

  private async viewers(topo: Topology, nodes: string[]): Promise<number> {
    let n = 0;
    for (const node of nodes) n += (await topo.viewers(node)).length;
    return n;
  }

  private async journal(e: Omit<JournalEntry, 'at'>): Promise<void> {
    const entry = { at: new Date(this.now()).toISOString(), ...e };
    if (entry.kind !== 'reconcile') this.o.onAction?.(entry as JournalEntry & { kind: 'scale-out' | 'scale-in' });
    this.o.log(e.result === 'failed' ? 'error' : 'info', `${e.kind} ${e.result}`, { ...e });
    await this.store.journal(entry);
  }

  private async write(lease: Lease, commands: Command[]): Promise<void> {
    if (!(await fencedWrite(this.o.redis, lease, commands))) throw new Error(`lost the lock of tree ${lease.tree}`);
  }

  // ---- scale-out (seed steps 3a-3e) ----------------------------------------

  private async scaleOut(lease: Lease, r: ScalingRequest, desired: number, why: string): Promise<void> {
    const started = this.now();
    const tree = r.tree;
    // 3a: take a relay slot atomically.
    const slot = await this.o.redis.spop(keys.availableSlots(tree));
    if (!slot) {
      await this.journal({
        tree,
        kind: 'scale-out',
        result: 'failed',
        reason: 'other',
        why: `no free relay slot in relay-slots:${tree}:available`,
      });
      return;
    }
    const subtree = assertId('slot', `${tree}-st-${await this.o.redis.incr(actuatorKeys.subtreeSeq(tree))}`);
    await this.write(lease, [
      ['SADD', actuatorKeys.trees, tree],
      [
        'HSET',
        actuatorKeys.inflight(tree),
        'kind',
        'scale-out',
        'subtree',
        subtree,
        'slot',
        slot,
        'step',
        'provision',
        'episode',
        episodeOf(r),
        'startedAt',
        started,
      ],
    ]);
    let nodes: SubtreeNode[] = [];
    let step: FailureReason = 'provision';
    try {
      // 3b-3c: provision, wait for readiness with a deadline.
      const spec = { tree, subtree, slot, size: this.o.subtreeSize };
      failpoint('scale-out:slot-taken');
      await this.o.provisioner.create(spec);
      // Announced while the nodes start, as kubernetes_sd lists a starting pod:
      // Prometheus's discovery delay (up to 5 s, twice, in 2.42) then overlaps
      // provisioning. A rollback removes them like the ready ones.
      const planned = this.o.provisioner.plannedTargets?.(spec) ?? [];
      if (planned.length) this.o.targets.write(tree, subtree, planned);
      failpoint('scale-out:created');
      step = 'timeout';
      nodes = await this.o.provisioner.waitReady(spec, this.o.readyTimeoutMs);
      failpoint('scale-out:ready');
      step = 'topology';
      const topo = new Topology(this.o.redis, tree);
      const targets = [];
      for (const n of nodes) {
        const info = await topo.getNode(n.id);
        if (!info) throw new Error(`egress node ${n.id} is ready but not registered in Redis`);
        targets.push({ nodeId: n.id, address: `${info.host}:${info.httpPort}` });
      }
      // 3d-3e: parent links, children and the children-added event in one MULTI.
      await this.write(lease, [['HSET', actuatorKeys.inflight(tree), 'step', 'attach']]);
      await topo.attachChildren(
        slot,
        nodes.map((n) => n.id),
      );
      failpoint('scale-out:attached');
      this.o.targets.write(tree, subtree, targets);
      failpoint('scale-out:targets-written');
      const record: SubtreeRecord = { slot, createdAt: this.now(), nodes: nodes.map((n) => n.id) };
      await this.write(lease, [
        ['HSET', actuatorKeys.subtrees(tree), subtree, JSON.stringify(record)],
        ['HSET', actuatorKeys.tree(tree), 'desired', desired, 'lastScaleOutAt', this.now()],
        ['SADD', actuatorKeys.episodes(tree), episodeOf(r)],
        ['DEL', actuatorKeys.inflight(tree)],
      ]);
      await this.journal({
        tree,
        kind: 'scale-out',
        result: 'done',
        subtree,
        nodes: nodes.length,
        why,
        durationMs: this.now() - started,
      });
    } catch (err) {
      await this.rollbackScaleOut(lease, tree, subtree, slot);
      await this.journal({
        tree,
        kind: 'scale-out',
        result: 'failed',
        reason: step,
        subtree,
        why: `${(err as Error).message}; rolled back`,
        durationMs: this.now() - started,
      });
    }
  }

  /** Undoes a scale-out at any step: no topology, no subtree, no targets, the slot back. */
  private async rollbackScaleOut(lease: Lease, tree: string, subtree: string, slot: string | undefined): Promise<void> {
    const topo = new Topology(this.o.redis, tree);
    // The slot came free from relay-slots:available, so every child it has is this subtree's.
    const attached = slot ? await topo.children(slot) : [];
    if (slot && attached.length) await topo.detachChildren(slot, attached);
    await this.o.provisioner.delete(tree, subtree);
    this.o.targets.remove(subtree);
    await this.write(lease, [
      ...(slot ? [['SADD', keys.availableSlots(tree), slot] as Command] : []),
      ['DEL', actuatorKeys.inflight(tree)],
    ]);
  }

  // ---- scale-in ------------------------------------------------------------

  private async scaleIn(
    lease: Lease,
    r: ScalingRequest | null,
    subtree: string,
    desired: number | null,
    why: string,
  ): Promise<void> {
    const started = this.now();
    const tree = lease.tree;
    const record = (await this.store.subtrees(tree)).get(subtree);
    if (!record) {
      await this.write(lease, [['DEL', actuatorKeys.inflight(tree)]]);
      return;
    }
    await this.write(lease, [
      [
        'HSET',
        actuatorKeys.inflight(tree),
        'kind',
        'scale-in',
        'subtree',
        subtree,
        'slot',
        record.slot,
        'step',
        'drain',
        'startedAt',
        started,
        ...(r ? ['episode', episodeOf(r)] : []),
      ] as Command,
    ]);
    const topo = new Topology(this.o.redis, tree);
    // Drain: no new viewers on its nodes; wait for zero viewers or the deadline.
    for (const n of record.nodes) await topo.setDraining(n, true).catch(() => {});
    const deadline = this.now() + this.o.drainTimeoutMs;
    while (this.now() < deadline && (await this.viewers(topo, record.nodes)) > 0) {
      await sleep(500);
      await this.lock.extend(lease);
    }
    const left = await this.viewers(topo, record.nodes);
    failpoint('scale-in:drained');
    await this.write(lease, [['HSET', actuatorKeys.inflight(tree), 'step', 'remove']]);
    await topo.detachChildren(record.slot, record.nodes);
    failpoint('scale-in:detached');
    await this.o.provisioner.delete(tree, subtree);
    failpoint('scale-in:deleted');
    this.o.targets.remove(subtree);
    const finalDesired = desired ?? Math.max(0, (await this.store.subtrees(tree)).size - 1);
    await this.write(lease, [
      ['SADD', keys.availableSlots(tree), record.slot],
      ['HDEL', actuatorKeys.subtrees(tree), subtree],
      ['HSET', actuatorKeys.tree(tree), 'desired', finalDesired, 'lastScaleInAt', this.now()],
      ...(r ? [['SADD', actuatorKeys.episodes(tree), episodeOf(r)] as Command] : []),
      ['DEL', actuatorKeys.inflight(tree)],
    ]);
    await this.journal({
      tree,
      kind: 'scale-in',
      result: 'done',
      subtree,
      nodes: record.nodes.length,
      why: `${why}; ${left} viewers left at removal`,
      durationMs: this.now() - started,
    });
  }

  // ---- reconcile -----------------------------------------------------------

  /**
   * Subtrees the provisioner runs that Redis does not record (an actuator lost
   * between create and record) are deleted; subtrees Redis records that no
   * longer run (a lost machine) are dropped from the topology, their slot
   * returned. A tree busy with an action is left for the next round.
   */
  async reconcile(): Promise<void> {
    const running = await this.o.provisioner.list();
    const trees = new Set([...(await this.store.trees()), ...running.map((r) => r.tree)]);
    for (const tree of trees) {
      const lease = await this.lock.acquire(tree);
      if (!lease) continue;
      try {
        await this.recover(tree, lease);
        const known = await this.store.subtrees(tree);
        const live = new Set(running.filter((r) => r.tree === tree).map((r) => r.subtree));
        for (const subtree of live) {
          if (known.has(subtree)) continue;
          await this.o.provisioner.delete(tree, subtree);
          this.o.targets.remove(subtree);
          await this.journal({
            tree,
            kind: 'reconcile',
            result: 'done',
            subtree,
            why: 'running but not recorded: deleted',
          });
        }
        for (const [subtree, record] of known) {
          if (live.has(subtree)) continue;
          const topo = new Topology(this.o.redis, tree);
          const attached = await topo.children(record.slot);
          if (attached.length) await topo.detachChildren(record.slot, attached);
          this.o.targets.remove(subtree);
          await this.write(lease, [
            ['SADD', keys.availableSlots(tree), record.slot],
            ['HDEL', actuatorKeys.subtrees(tree), subtree],
            ['HSET', actuatorKeys.tree(tree), 'desired', known.size - 1],
          ]);
          known.delete(subtree);
          await this.journal({
            tree,
            kind: 'reconcile',
            result: 'done',
            subtree,
            why: 'recorded but not running: removed from the topology, slot returned',
          });
        }
      } catch (err) {
        this.o.log('warn', 'reconcile of a tree failed', { tree, err: (err as Error).message });
      } finally {
        await this.lock.release(lease).catch(() => {});
      }
    }
  }

  // ---- recovery ------------------------------------------------------------

  private async recoverAll(): Promise<void> {
    for (const tree of await this.store.trees()) {
      if (!(await this.store.inflight(tree))) continue;
      const lease = await this.acquire(tree);
      try {
        await this.recover(tree, lease);
      } finally {
        await this.lock.release(lease).catch(() => {});
      }
    }
  }

  /** After a crash: a scale-out in flight is rolled back, a scale-in in flight is finished. */
  private async recover(tree: string, lease: Lease): Promise<void> {
    const f = await this.store.inflight(tree);
    if (!f) return;
    if (f.kind === 'scale-out') {
      await this.rollbackScaleOut(lease, tree, f.subtree, f.slot);
      await this.journal({
        tree,
        kind: 'scale-out',
        result: 'rolled-back',
        reason: 'other',
        subtree: f.subtree,
        why: `interrupted at step ${f.step} (actuator restart): rolled back`,
      });
    } else {
      await this.scaleIn(lease, null, f.subtree, null, `scale-in interrupted at step ${f.step}, finished`);
    }
  }
}

/**
 * Fault injection for the crash tests: CANOPY_FAILPOINT=<name> kills this
 * process with SIGKILL when it reaches that step, as a crash would.
 */
function failpoint(name: string): void {
  if (process.env.CANOPY_FAILPOINT === name) process.kill(process.pid, 'SIGKILL');
}

function parseEntry(raw: string | undefined): InboxEntry | null {
  try {
    const v = JSON.parse(raw ?? '') as InboxEntry;
    return Array.isArray(v?.requests) ? v : null;
  } catch {
    return null;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
