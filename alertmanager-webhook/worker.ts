import type { Redis } from 'ioredis';
import { DatasetWatch, Topology } from '../topology/index.ts';
import { type ActionContext, acquire, holding, journal, type Log, viewers } from './context.ts';
import { byUrgency, type Decision, decide, episodeOf, type Policy } from './decide.ts';
import { consumeInbox } from './inbox.ts';
import { fencedWrite, TreeLock } from './lock.ts';
import type { ScalingRequest } from './payload.ts';
import type { Provisioner } from './provisioners/provisioner.ts';
import { checkDataset } from './rebuild.ts';
import { reconcile } from './reconcile.ts';
import { recover, recoverAll } from './recovery.ts';
import { scaleIn } from './scale-in.ts';
import { scaleOutTo } from './scale-out.ts';
import { ActuatorStore, writes } from './store.ts';
import type { TargetFiles } from './targets.ts';

export interface WorkerOptions extends Pick<ActionContext, 'onAction' | 'onLockContention' | 'onRebuilt'> {
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
  log: Log;
  onDuplicate?: () => void;
  now?: () => number;
}

/**
 * Acts on the inbox: one request at a time per tree under the tree's lock,
 * decisions as desired state, every step idempotent and recorded in flight,
 * so a restarted actuator rolls a half-done scale-out back and finishes a
 * half-done scale-in. The jobs live in their own modules: the stream in
 * `inbox.ts`, the actions in `scale-out.ts`, `scale-in.ts`, `recovery.ts`,
 * `reconcile.ts`; this class only routes requests to them.
 */
export class Worker {
  private readonly ctx: ActionContext;
  private stopped = false;

  constructor(private readonly o: WorkerOptions) {
    this.ctx = {
      redis: o.redis,
      dataset: new DatasetWatch(o.redis),
      store: new ActuatorStore(o.redis, (m, d) => o.log('warn', m, d)),
      lock: new TreeLock(o.redis, o.owner, o.lockTtlMs),
      provisioner: o.provisioner,
      targets: o.targets,
      subtreeSize: o.subtreeSize,
      lockTtlMs: o.lockTtlMs,
      readyTimeoutMs: o.readyTimeoutMs,
      drainTimeoutMs: o.drainTimeoutMs,
      now: o.now ?? Date.now,
      log: o.log,
      onAction: o.onAction,
      onLockContention: o.onLockContention,
      onRebuilt: o.onRebuilt,
    };
  }

  stop(): void {
    this.stopped = true;
  }

  /** Consumes the inbox until stopped; recovers interrupted actions first, reconciles every interval. */
  async run(): Promise<void> {
    const interval = this.o.reconcileIntervalMs ?? 60_000;
    let nextReconcile = this.ctx.now() + interval;
    await consumeInbox({
      redis: this.o.redis,
      owner: this.o.owner,
      claimIdleMs: this.o.lockTtlMs,
      stopped: () => this.stopped,
      log: this.o.log,
      // Again after Redis lost the inbox's group: the subtree records first, then what was in flight.
      setUp: async () => {
        await checkDataset(this.ctx);
        await recoverAll(this.ctx);
      },
      beforeRead: async () => {
        await checkDataset(this.ctx);
        if (this.ctx.now() < nextReconcile) return;
        nextReconcile = this.ctx.now() + interval;
        await this.reconcile();
      },
      // Most urgent first within one notification.
      handle: async (entry) => {
        const receivedAt = Date.parse(entry.receivedAt);
        for (const { request } of byUrgency(entry.requests.map((request) => ({ request }))))
          await this.handle(Number.isNaN(receivedAt) ? request : { ...request, receivedAt });
      },
    });
  }

  /** Decides on one request under its tree's lock and acts (or journals why not). */
  async handle(r: ScalingRequest): Promise<Decision> {
    const ctx = this.ctx;
    await checkDataset(ctx);
    const lease = await acquire(ctx, r.tree);
    return holding(ctx, lease, async () => {
      await recover(ctx, lease);
      const topo = new Topology(ctx.redis, r.tree);
      const state = await ctx.store.treeState(r.tree, (nodes) => viewers(topo, nodes));
      const policy = { ...this.o.policy, paused: this.o.policy.paused || (await ctx.store.paused()) };
      const d = decide(r, state, await ctx.store.totalDesired(), policy, ctx.now());
      if (d.action === 'none') {
        if (d.duplicate) this.o.onDuplicate?.();
        else await journal(ctx, { tree: r.tree, kind: r.kind, result: 'skipped', why: d.why });
        return d;
      }
      if (this.o.dryRun) {
        await fencedWrite(ctx.redis, lease, [writes.episodeActedOn(r.tree, episodeOf(r))]);
        await journal(ctx, {
          tree: r.tree,
          kind: d.action,
          result: 'dry-run',
          why: d.why,
          subtree: d.action === 'scale-in' ? d.subtree : undefined,
        });
        return d;
      }
      if (d.action === 'scale-out') await scaleOutTo(ctx, lease, r, state.desired, d.desired, d.why);
      else await scaleIn(ctx, lease, r, d.subtree, d.desired, d.why);
      return d;
    });
  }

  reconcile(): Promise<void> {
    return reconcile(this.ctx);
  }
}
