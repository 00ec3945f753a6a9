import { z } from 'zod';
import { ID_PATTERN } from '../../topology/index.ts';
import { duration } from '../../process/duration.ts';
import { LOSS_DIRECTIONS, type StackNetwork } from '../../process/netns.ts';
import { defineStep, type StepContext } from './step.ts';

const RATE = /^(\d+(?:\.\d+)?)(bit|kbit|mbit|gbit)$/;
const UNIT = { bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9 } as const;

const node = z.string().regex(ID_PATTERN, 'a node id (lower-case letters, digits, -)');

function networkOf(ctx: StepContext, kind: string): StackNetwork {
  const n = ctx.stack.network;
  if (!n) throw new Error(`${kind}: needs a stack with a network per node (stack: { netns: true } or --netns)`);
  return n;
}

/**
 * `- impair: { node, loss, rate, delay, jitter }`: on the link towards one
 * node (a baseline node or one the actuator added): `loss` percent of its
 * incoming UDP dropped (nftables; `direction: out`: of what it sends), `rate` a tc tbf limit (`800kbit`), and
 * netem's `delay`/`jitter` where the kernel has sch_netem (refused where it
 * has not). Replaces that node's earlier impairment.
 */
export const impair = defineStep(
  z
    .object({
      node,
      loss: z.number().min(0).max(100).optional(),
      /** `in` (default): UDP the node receives; `out`: UDP it sends (an egress's to its viewers). */
      direction: z.enum(LOSS_DIRECTIONS).optional(),
      rate: z.string().regex(RATE, 'a rate such as 800kbit or 2mbit').optional(),
      delay: duration.optional(),
      jitter: duration.optional(),
    })
    .strict()
    .refine((f) => f.loss !== undefined || f.rate !== undefined || f.delay !== undefined, {
      message: 'impair: give loss, rate or delay',
    })
    .refine((f) => f.direction === undefined || f.loss !== undefined, { message: 'impair: direction needs a loss' })
    .refine((f) => f.jitter === undefined || f.delay !== undefined, { message: 'impair: jitter needs a delay' }),
  async (ctx, f) => {
    const net = networkOf(ctx, 'impair');
    const m = f.rate ? RATE.exec(f.rate)! : null;
    await net.impair(f.node, {
      lossPercent: f.loss,
      lossDirection: f.direction,
      rate: m ? { text: f.rate!, bitsPerSecond: Number(m[1]) * UNIT[m[2] as keyof typeof UNIT] } : undefined,
      delayMs: f.delay,
      jitterMs: f.jitter,
    });
    ctx.report.impaired = { ...ctx.report.impaired, [f.node]: { at: Date.now(), dropped: 0 } };
    ctx.event(
      `impair ${f.node}: ${[
        f.loss !== undefined && `loss ${f.loss}%${f.direction === 'out' ? ' outgoing' : ''}`,
        f.rate && `rate ${f.rate}`,
        f.delay !== undefined && `delay ${f.delay} ms`,
        f.jitter !== undefined && `jitter ${f.jitter} ms`,
      ]
        .filter(Boolean)
        .join(', ')}`,
    );
  },
);

/** `- clear: { node }`: removes that node's impairment, recording what its loss rule dropped. */
export const clear = defineStep(z.object({ node }).strict(), async (ctx, { node: id }) => {
  const net = networkOf(ctx, 'clear');
  const dropped = await net.dropped(id);
  await net.clear(id);
  const i = ctx.report.impaired?.[id];
  if (i) i.dropped = dropped;
  ctx.event(`clear ${id} (its loss rule dropped ${dropped} packets)`);
});
