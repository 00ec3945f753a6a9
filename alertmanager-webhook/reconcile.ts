import { Topology } from '../topology/index.ts';
import { type ActionContext, holding, journal, write } from './context.ts';
import { adopt, checkDataset, serving } from './rebuild.ts';
import { recover } from './recovery.ts';
import { writes } from './store.ts';

/**
 * Subtrees the provisioner runs that Redis does not record (an actuator lost
 * between create and record) are deleted, unless their nodes are attached in
 * Redis (they serve: the record was lost, not the subtree), which are recorded
 * again (rebuild.ts); subtrees Redis records that no
 * longer run (a lost machine) are dropped from the topology, their slot
 * returned. A tree busy with an action is left for the next round.
 */
export async function reconcile(ctx: ActionContext): Promise<void> {
  await checkDataset(ctx);
  const running = await ctx.provisioner.list();
  const trees = new Set([...(await ctx.store.trees()), ...running.map((r) => r.tree)]);
  for (const tree of trees) {
    const lease = await ctx.lock.acquire(tree);
    if (!lease) continue;
    await holding(ctx, lease, async () => {
      try {
        await recover(ctx, lease);
        const known = await ctx.store.subtrees(tree);
        const live = new Set(running.filter((r) => r.tree === tree).map((r) => r.subtree));
        for (const r of running.filter((x) => x.tree === tree)) {
          const subtree = r.subtree;
          if (known.has(subtree)) continue;
          // Attached in Redis: its nodes serve (Redis lost the record, not the subtree). Recorded again, never deleted.
          if (await serving(ctx, r)) {
            await adopt(ctx, lease, [r], 'running, not recorded, but serving: record rebuilt');
            const rec = (await ctx.store.subtrees(tree)).get(subtree);
            if (rec) known.set(subtree, rec);
            continue;
          }
          await ctx.provisioner.delete(tree, subtree);
          ctx.targets.remove(subtree);
          await journal(ctx, {
            tree,
            kind: 'reconcile',
            result: 'done',
            subtree,
            why: 'running but not recorded: deleted',
          });
        }
        for (const [subtree, record] of known) {
          if (live.has(subtree)) continue;
          const topo = new Topology(ctx.redis, tree);
          const attached = await topo.children(record.slot);
          if (attached.length) await topo.detachChildren(record.slot, attached, lease);
          ctx.targets.remove(subtree);
          await write(ctx, lease, [
            writes.returnSlot(tree, record.slot),
            writes.dropSubtree(tree, subtree),
            writes.treeFields(tree, { desired: known.size - 1 }),
          ]);
          known.delete(subtree);
          await journal(ctx, {
            tree,
            kind: 'reconcile',
            result: 'done',
            subtree,
            why: 'recorded but not running: removed from the topology, slot returned',
          });
        }
        // A relay that re-registered after Redis lost its data may advertise a slot a subtree holds.
        if (known.size)
          await write(
            ctx,
            lease,
            [...known.values()].map((r) => writes.withdrawSlot(tree, r.slot)),
          );
      } catch (err) {
        ctx.log('warn', 'reconcile of a tree failed', { tree, err: (err as Error).message });
      }
    });
  }
}
