import { setTimeout as sleep } from 'node:timers/promises';
import { Topology, TopologyInputError } from '../topology/index.ts';
import { type ActionContext, failpoint, journal, viewers, write } from './context.ts';
import { episodeOf } from './decide.ts';
import type { Lease } from './lock.ts';
import type { ScalingRequest } from './payload.ts';
import { writes } from './store.ts';

/**
 * Removes a subtree: drain (no new viewers, wait for none or the deadline),
 * detach, delete, slot back. `r` and `desired` are null when recovery finishes
 * a scale-in a crash interrupted.
 */
export async function scaleIn(
  ctx: ActionContext,
  lease: Lease,
  r: ScalingRequest | null,
  subtree: string,
  desired: number | null,
  why: string,
): Promise<void> {
  const started = ctx.now();
  const tree = lease.tree;
  const record = (await ctx.store.subtrees(tree)).get(subtree);
  if (!record) {
    await write(ctx, lease, [writes.endAction(tree)]);
    return;
  }
  await write(ctx, lease, [
    writes.beginAction(tree, {
      kind: 'scale-in',
      subtree,
      slot: record.slot,
      step: 'drain',
      startedAt: started,
      episode: r ? episodeOf(r) : undefined,
    }),
  ]);
  const topo = new Topology(ctx.redis, tree);
  // Drain: no new viewers on its nodes; wait for zero viewers or the deadline.
  for (const n of record.nodes)
    await topo.setDraining(n, true, lease).catch((err) => {
      // A node already gone has nothing to drain; a lost lock stops the action.
      if (!(err instanceof TopologyInputError)) throw err;
    });
  const deadline = ctx.now() + ctx.drainTimeoutMs;
  while (ctx.now() < deadline && (await viewers(topo, record.nodes)) > 0) {
    await sleep(500);
    await ctx.lock.extend(lease);
  }
  const left = await viewers(topo, record.nodes);
  failpoint('scale-in:drained');
  await write(ctx, lease, [writes.actionStep(tree, 'remove')]);
  await topo.detachChildren(record.slot, record.nodes, lease);
  failpoint('scale-in:detached');
  await ctx.provisioner.delete(tree, subtree);
  failpoint('scale-in:deleted');
  ctx.targets.remove(subtree);
  const finalDesired = desired ?? Math.max(0, (await ctx.store.subtrees(tree)).size - 1);
  await write(ctx, lease, [
    writes.returnSlot(tree, record.slot),
    writes.dropSubtree(tree, subtree),
    writes.treeFields(tree, { desired: finalDesired, lastScaleInAt: ctx.now() }),
    ...(r ? [writes.episodeActedOn(tree, episodeOf(r))] : []),
    writes.endAction(tree),
  ]);
  await journal(ctx, {
    tree,
    kind: 'scale-in',
    result: 'done',
    subtree,
    nodes: record.nodes.length,
    why: `${why}; ${left} viewers left at removal`,
    durationMs: ctx.now() - started,
  });
}
