import { raiseSubtreeNumber, Topology } from '../topology/index.ts';
import { type ActionContext, acquire, holding, journal, write } from './context.ts';
import type { Lease } from './lock.ts';
import type { RunningSubtree } from './provisioners/provisioner.ts';
import { writes } from './store.ts';

/**
 * Redis losing its data (a FLUSHALL, a restart without it) takes the
 * actuator's subtree records with it, and reconcile would then delete every
 * subtree as "running but not recorded". So before anything else acts, the
 * dataset epoch (topology/dataset.ts) is checked, and after a loss every
 * running subtree is recorded again from what the provisioner knows of it.
 */
export async function checkDataset(ctx: ActionContext): Promise<void> {
  if (!(await ctx.dataset.changed())) return;
  ctx.log('warn', 'Redis lost its data: rebuilding the subtree records from the provisioner');
  const running = await ctx.provisioner.list();
  for (const tree of new Set(running.map((r) => r.tree))) {
    const lease = await acquire(ctx, tree);
    await holding(ctx, lease, () =>
      adopt(
        ctx,
        lease,
        running.filter((r) => r.tree === tree),
        'running but not recorded after Redis lost its data: record rebuilt',
      ),
    );
  }
}

/** Whether a running subtree serves: one of its nodes is attached to a slot in Redis. */
export async function serving(ctx: ActionContext, r: RunningSubtree): Promise<boolean> {
  const topo = new Topology(ctx.redis, r.tree);
  for (const n of r.nodes ?? []) if ((await topo.parentOf(n)) !== null) return true;
  return r.slot !== undefined && (await topo.children(r.slot)).length > 0;
}

/**
 * Records running subtrees Redis does not: their slot taken out of the free
 * ones, the subtree counter past their numbers, the tree's desired count and a
 * change time (so no scale-in follows at once). A subtree whose slot cannot be
 * told is left out and reported; reconcile leaves it alone while it serves.
 * Returns how many were recorded.
 */
export async function adopt(ctx: ActionContext, lease: Lease, running: RunningSubtree[], why: string): Promise<number> {
  const tree = lease.tree;
  const topo = new Topology(ctx.redis, tree);
  const known = await ctx.store.subtrees(tree);
  const highest = Math.max(0, ...running.map((r) => Number(/-st-(\d+)$/.exec(r.subtree)?.[1] ?? 0)));
  await raiseSubtreeNumber(ctx.redis, lease, highest);
  const adopted: string[] = [];
  for (const r of running) {
    if (known.has(r.subtree)) continue;
    const slot = r.slot ?? (await slotOfNodes(topo, r.nodes ?? []));
    if (!slot) {
      ctx.log('warn', 'a running subtree has no known slot: not recorded', { tree, subtree: r.subtree });
      continue;
    }
    const nodes = r.nodes ?? (await topo.children(slot));
    await write(ctx, lease, [
      writes.knownTree(tree),
      writes.recordSubtree(tree, r.subtree, { slot, createdAt: r.createdAt ?? ctx.now(), nodes }),
      writes.withdrawSlot(tree, slot),
    ]);
    known.set(r.subtree, { slot, createdAt: r.createdAt ?? ctx.now(), nodes });
    adopted.push(r.subtree);
  }
  if (adopted.length === 0) return 0;
  await write(ctx, lease, [writes.treeFields(tree, { desired: known.size, lastScaleInAt: ctx.now() })]);
  ctx.onRebuilt?.(tree, adopted.length);
  for (const subtree of adopted) await journal(ctx, { tree, kind: 'reconcile', result: 'done', subtree, why });
  return adopted.length;
}

async function slotOfNodes(topo: Topology, nodes: string[]): Promise<string | null> {
  for (const n of nodes) {
    const p = await topo.parentOf(n);
    if (p) return p;
  }
  return null;
}
