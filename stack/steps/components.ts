import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { killGroup, processAlive } from '../../process/signals.ts';
import { ID_PATTERN } from '../../topology/index.ts';
import { COMPONENTS } from '../stack.ts';
import { defineStep } from './step.ts';

const component = z.enum(COMPONENTS);
/** What `stop` and `start` take: the servers whose outage the loop must ride out. */
const stoppable = z.enum(['redis', 'prometheus', 'alertmanager']);

/** `- kill: { node }` or `- kill: { component }`: SIGKILL, nothing saved, no restart. */
export const kill = defineStep(
  z.union([z.object({ node: z.string().regex(ID_PATTERN, 'a node id') }).strict(), z.object({ component }).strict()]),
  async (ctx, k) => {
    const { stack } = ctx;
    if ('component' in k) {
      await stack.components[k.component].kill();
      ctx.event(`killed ${k.component}`);
      return;
    }
    const own = stack.nodes.find((n) => n.id === k.node);
    const pid = own?.child.process.pid ?? stack.subtreeNodes().find((n) => n.id === k.node)?.pid;
    if (!pid || !processAlive(pid)) throw new Error(`kill: no running node ${k.node}`);
    // A subtree node leads its own process group (its forwarder with it).
    if (own) own.child.process.kill('SIGKILL');
    else killGroup(pid, 'SIGKILL');
    for (let i = 0; i < 100 && processAlive(pid); i++) await sleep(50);
    ctx.event(`killed node ${k.node}`);
  },
);

/** `- restart: { component }`: stopped (Redis saving its data) and started again on the same port. */
export const restart = defineStep(z.object({ component }).strict(), async (ctx, { component: c }) => {
  const x = ctx.stack.components[c];
  if (x.running()) await x.stop();
  await x.start();
  ctx.event(`restarted ${c}`);
});

/** `- stop: redis|prometheus|alertmanager`: an outage; Redis saves its data first (a maintenance stop). */
export const stop = defineStep(stoppable, async (ctx, c) => {
  await ctx.stack.components[c].stop();
  ctx.event(`stopped ${c}`);
});

/** `- start: redis|prometheus|alertmanager`: back on the same port, with its data. */
export const start = defineStep(stoppable, async (ctx, c) => {
  const x = ctx.stack.components[c];
  if (x.running()) throw new Error(`start: ${c} is running`);
  await x.start();
  ctx.event(`started ${c}`);
});

/**
 * `- redis-flush: { mode }`: Redis loses its data. `restart`: stopped without
 * saving and started empty (every client's connection drops); `flushall`:
 * FLUSHALL while running (connections stay, so nobody is told).
 */
export const redisFlush = defineStep(
  z.object({ mode: z.enum(['restart', 'flushall']).default('restart') }).strict(),
  async (ctx, { mode }) => {
    const { stack } = ctx;
    if (mode === 'flushall') await stack.redis.flushall();
    else {
      await stack.redisServer.halt({ keepData: false });
      await stack.redisServer.start();
    }
    ctx.event(`redis flushed (${mode})`);
  },
);
