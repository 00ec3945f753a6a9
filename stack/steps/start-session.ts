import { z } from 'zod';
import { waitUntil } from '../../process/wait.ts';
import { ID_PATTERN } from '../../topology/index.ts';
import { defineStep } from './step.ts';

/**
 * `- start-session: { id }`: the injection node starts a session (its SSRCs
 * numbered by order); once an egress node serves it, its WHEP URL (the tree's
 * entry point, on the injection) and player page are announced.
 */
export const startSession = defineStep(
  z.object({ id: z.string().regex(ID_PATTERN, 'a topology id (lower-case letters, digits, -)') }).strict(),
  async (ctx, { id }) => {
    const injection = ctx.stack.nodes.find((n) => n.type === 'injection')!;
    const ssrc = 100_000 + ctx.sessions.length * 2;
    const res = await fetch(`${injection.url}/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sessionId: id, audioSsrc: ssrc, videoSsrc: ssrc + 1 }),
      signal: AbortSignal.timeout(5_000),
    });
    if (res.status !== 201)
      throw new Error(`start-session ${id}: injection answered ${res.status} ${await res.text()}`);
    ctx.sessions.push(id);
    ctx.event(`session ${id} started`);
    // Live once an egress node serves it: the entry point then redirects a viewer there.
    await waitUntil(
      `session ${id} served by an egress node`,
      async () => (await ctx.topology.egressCandidates()).some((c) => c.load?.sessions.includes(id)),
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    ctx.announce(`whep: ${injection.url}/whep/${id}`);
    ctx.announce(`player: ${injection.url}/watch/${id}`);
  },
);
