import { type ActionContext, acquire, holding, journal } from './context.ts';
import type { Lease } from './lock.ts';
import { scaleIn } from './scale-in.ts';
import { rollbackScaleOut } from './scale-out.ts';

/** After a crash: a scale-out in flight is rolled back, a scale-in in flight is finished. */
export async function recover(ctx: ActionContext, lease: Lease): Promise<void> {
  const tree = lease.tree;
  const f = await ctx.store.inflight(tree);
  if (!f) return;
  if (f.kind === 'scale-out') {
    await rollbackScaleOut(ctx, lease, f.subtree, f.slot);
    await journal(ctx, {
      tree,
      kind: 'scale-out',
      result: 'rolled-back',
      reason: 'other',
      subtree: f.subtree,
      why: `interrupted at step ${f.step} (actuator restart): rolled back`,
    });
  } else {
    await scaleIn(ctx, lease, null, f.subtree, null, `scale-in interrupted at step ${f.step}, finished`);
  }
}

/** At start-up: every tree with an action in flight, each under its lock. */
export async function recoverAll(ctx: ActionContext): Promise<void> {
  for (const tree of await ctx.store.trees()) {
    if (!(await ctx.store.inflight(tree))) continue;
    const lease = await acquire(ctx, tree);
    await holding(ctx, lease, () => recover(ctx, lease));
  }
}
