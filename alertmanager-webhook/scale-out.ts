import { assertId, keys, nextSubtreeNumber, Topology } from '../topology/index.ts';
import { type ActionContext, failpoint, journal, write } from './context.ts';
import { episodeOf } from './decide.ts';
import type { Lease } from './lock.ts';
import type { ScalingRequest } from './payload.ts';
import type { SubtreeNode } from './provisioners/provisioner.ts';
import { type FailureReason, type SubtreeRecord, writes } from './store.ts';

/**
 * Adds a subtree (seed steps 3a-3e): a relay slot, the provisioned nodes, their
 * topology, their scrape targets. Recorded in flight from the first step; any
 * failure rolls back. Resolves true once the subtree is recorded.
 */
export async function scaleOut(
  ctx: ActionContext,
  lease: Lease,
  r: ScalingRequest,
  desired: number,
  why: string,
): Promise<boolean> {
  const started = ctx.now();
  const tree = r.tree;
  const topo = new Topology(ctx.redis, tree);
  // 3a: take a relay slot atomically (behind the fence, as every topology write below).
  let slot = await topo.takeSlot(lease);
  // A relay that re-registered after Redis lost its data may offer a slot a recorded subtree holds: never hand it out twice.
  const inUse = new Set([...(await ctx.store.subtrees(tree)).values()].map((s) => s.slot));
  while (slot && inUse.has(slot)) slot = await topo.takeSlot(lease);
  if (!slot) {
    await journal(ctx, {
      tree,
      kind: 'scale-out',
      result: 'failed',
      reason: 'other',
      why: `no free relay slot in ${keys.availableSlots(tree)}`,
    });
    return false;
  }
  const subtree = assertId('slot', `${tree}-st-${await nextSubtreeNumber(ctx.redis, lease)}`);
  await write(ctx, lease, [
    writes.knownTree(tree),
    writes.beginAction(tree, {
      kind: 'scale-out',
      subtree,
      slot,
      step: 'provision',
      episode: episodeOf(r),
      startedAt: started,
    }),
  ]);
  let nodes: SubtreeNode[] = [];
  let step: FailureReason = 'provision';
  try {
    // 3b-3c: provision, wait for readiness with a deadline.
    const spec = { tree, subtree, slot, size: ctx.subtreeSize };
    failpoint('scale-out:slot-taken');
    await ctx.provisioner.create(spec);
    // Announced while the nodes start, as kubernetes_sd lists a starting pod:
    // Prometheus's discovery delay (up to 5 s, twice, in 2.42) then overlaps
    // provisioning. A rollback removes them like the ready ones.
    const planned = ctx.provisioner.plannedTargets?.(spec) ?? [];
    if (planned.length) ctx.targets.write(tree, subtree, planned);
    failpoint('scale-out:created');
    step = 'timeout';
    nodes = await ctx.provisioner.waitReady(spec, ctx.readyTimeoutMs);
    failpoint('scale-out:ready');
    step = 'topology';
    const targets = [];
    for (const n of nodes) {
      const info = await topo.getNode(n.id);
      if (!info) throw new Error(`egress node ${n.id} is ready but not registered in Redis`);
      targets.push({ nodeId: n.id, address: `${info.host}:${info.httpPort}` });
    }
    // 3d-3e: parent links, children and the children-added event in one fenced script.
    await write(ctx, lease, [writes.actionStep(tree, 'attach')]);
    await topo.attachChildren(
      slot,
      nodes.map((n) => n.id),
      lease,
    );
    failpoint('scale-out:attached');
    ctx.targets.write(tree, subtree, targets);
    failpoint('scale-out:targets-written');
    const record: SubtreeRecord = { slot, createdAt: ctx.now(), nodes: nodes.map((n) => n.id) };
    await write(ctx, lease, [
      writes.recordSubtree(tree, subtree, record),
      writes.treeFields(tree, { desired, lastScaleOutAt: ctx.now() }),
      writes.episodeActedOn(tree, episodeOf(r)),
      writes.endAction(tree),
    ]);
    await journal(ctx, {
      tree,
      kind: 'scale-out',
      result: 'done',
      subtree,
      nodes: nodes.length,
      why,
      durationMs: ctx.now() - started,
    });
    return true;
  } catch (err) {
    await rollbackScaleOut(ctx, lease, subtree, slot);
    await journal(ctx, {
      tree,
      kind: 'scale-out',
      result: 'failed',
      reason: step,
      subtree,
      why: `${(err as Error).message}; rolled back`,
      durationMs: ctx.now() - started,
    });
    return false;
  }
}

/**
 * Adds subtrees one after another up to `desired` (each recorded and crash-safe
 * on its own), keeping the tree's lock; stops at the first that fails.
 */
export async function scaleOutTo(
  ctx: ActionContext,
  lease: Lease,
  r: ScalingRequest,
  from: number,
  desired: number,
  why: string,
): Promise<void> {
  for (let n = from + 1; n <= desired; n++) {
    if (n > from + 1 && !(await ctx.lock.extend(lease))) throw new Error(`lost the lock of tree ${lease.tree}`);
    if (!(await scaleOut(ctx, lease, r, n, desired > from + 1 ? `${why} (${n - from} of ${desired - from})` : why)))
      return;
  }
}

/** Undoes a scale-out at any step: no topology, no subtree, no targets, the slot back. */
export async function rollbackScaleOut(
  ctx: ActionContext,
  lease: Lease,
  subtree: string,
  slot: string | undefined,
): Promise<void> {
  const tree = lease.tree;
  const topo = new Topology(ctx.redis, tree);
  // The slot came free from relay-slots:available, so every child it has is this subtree's.
  const attached = slot ? await topo.children(slot) : [];
  if (slot && attached.length) await topo.detachChildren(slot, attached, lease);
  await ctx.provisioner.delete(tree, subtree);
  ctx.targets.remove(subtree);
  await write(ctx, lease, [...(slot ? [writes.returnSlot(tree, slot)] : []), writes.endAction(tree)]);
}
