import type { Redis } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DatasetWatch, Topology } from '../topology/index.ts';
import { type Command, fencedWrite, type Lease, type TreeLock } from './lock.ts';
import type { Provisioner } from './provisioners/provisioner.ts';
import type { ActuatorStore, JournalEntry } from './store.ts';
import type { TargetFiles } from './targets.ts';

export type Log = (level: 'info' | 'warn' | 'error', msg: string, detail?: Record<string, unknown>) => void;

/** What every action (scale-out, scale-in, recovery, reconcile) works with. */
export interface ActionContext {
  redis: Redis;
  /** Which Redis dataset the actuator's records were written in (rebuild.ts). */
  dataset: DatasetWatch;
  store: ActuatorStore;
  lock: TreeLock;
  provisioner: Provisioner;
  targets: TargetFiles;
  /** Egress nodes per subtree. */
  subtreeSize: number;
  lockTtlMs: number;
  readyTimeoutMs: number;
  drainTimeoutMs: number;
  now: () => number;
  log: Log;
  /** Every finished scaling action, for metrics and Slack. */
  onAction?: (e: JournalEntry & { kind: 'scale-out' | 'scale-in' }) => void;
  onLockContention?: () => void;
  /** Subtree records written again after Redis lost its data. */
  onRebuilt?: (tree: string, subtrees: number) => void;
}

/** Waits for the tree's lock up to two TTLs (a holder that died frees it after one). */
export async function acquire(ctx: ActionContext, tree: string): Promise<Lease> {
  const deadline = ctx.now() + ctx.lockTtlMs * 2;
  for (;;) {
    const lease = await ctx.lock.acquire(tree);
    if (lease) return lease;
    ctx.onLockContention?.();
    if (ctx.now() > deadline) throw new Error(`tree ${tree} stays locked by another actuator`);
    await sleep(200);
  }
}

/** Runs `fn` holding `lease`, then gives the lock back (a lost lock expires by itself). */
export async function holding<T>(ctx: ActionContext, lease: Lease, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } finally {
    await ctx.lock.release(lease).catch(() => {});
  }
}

/** A fenced write that must land: losing the lock mid-action is a failure of the action. */
export async function write(ctx: ActionContext, lease: Lease, commands: Command[]): Promise<void> {
  if (!(await fencedWrite(ctx.redis, lease, commands))) throw new Error(`lost the lock of tree ${lease.tree}`);
}

export async function journal(ctx: ActionContext, e: Omit<JournalEntry, 'at'>): Promise<void> {
  const entry = { at: new Date(ctx.now()).toISOString(), ...e };
  if (entry.kind !== 'reconcile') ctx.onAction?.(entry as JournalEntry & { kind: 'scale-out' | 'scale-in' });
  ctx.log(e.result === 'failed' ? 'error' : 'info', `${e.kind} ${e.result}`, { ...e });
  await ctx.store.journal(entry);
}

export async function viewers(topo: Topology, nodes: string[]): Promise<number> {
  let n = 0;
  for (const node of nodes) n += (await topo.viewers(node)).length;
  return n;
}

/**
 * Fault injection for the crash tests: CANOPY_FAILPOINT=<name> kills this
 * process with SIGKILL when it reaches that step, as a crash would.
 */
export function failpoint(name: string): void {
  if (process.env.CANOPY_FAILPOINT === name) process.kill(process.pid, 'SIGKILL');
}
