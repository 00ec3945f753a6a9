import type { EgressCandidate, NodeInfo } from '../topology/index.ts';

/**
 * Which egress node takes a new viewer of a session: among the nodes that are
 * ready (a fresh load record), not draining and serving the session, the one
 * whose pool is least used (fraction, then free ports, then id, so equal nodes
 * are picked the same way every time); a node with no free port is never chosen. Pure: the entry point feeds it what it
 * read from Redis plus its own redirects not yet reflected there.
 */

export type Choice =
  | { node: NodeInfo; allocated: number; size: number }
  | { node: null; why: 'no-egress' | 'not-serving' | 'full' };

/** `pending`: redirects this entry point sent to a node since that node last wrote its load. */
export function chooseEgress(
  candidates: EgressCandidate[],
  sessionId: string,
  pending: (nodeId: string, loadAt: number) => number = () => 0,
): Choice {
  const serving = candidates.filter((c) => c.load && !c.node.draining && c.load.sessions.includes(sessionId));
  if (serving.length === 0) return { node: null, why: candidates.length === 0 ? 'no-egress' : 'not-serving' };
  // Room is what the node itself reported; redirects on their way only order the nodes (counted
  // for a grace second, they may be in the record already: near a full pool they must not refuse).
  const withRoom = serving
    .filter((c) => c.load!.allocated < c.load!.size)
    .map((c) => ({
      node: c.node,
      size: c.load!.size,
      allocated: c.load!.allocated,
      expected: c.load!.allocated + pending(c.node.id, c.load!.at),
    }));
  if (withRoom.length === 0) return { node: null, why: 'full' };
  withRoom.sort(
    (a, b) =>
      a.expected / a.size - b.expected / b.size ||
      b.size - b.expected - (a.size - a.expected) ||
      a.node.id.localeCompare(b.node.id),
  );
  const { node, allocated, size } = withRoom[0]!;
  return { node, allocated, size };
}

/**
 * A redirect stays counted until a load record written this long after it:
 * the viewer's POST reaches its egress node, and its port is taken, a little
 * after the redirect, so a record written in between does not have it yet.
 */
export const PENDING_GRACE_MS = 1_000;

/**
 * Redirects sent per node, counted as taken ports until the node's load
 * record surely has them, so a burst of viewers between two writes does not
 * all land on one node. Counting one twice for a second only spreads a burst
 * more evenly.
 */
export class PendingRedirects {
  private readonly byNode = new Map<string, number[]>();

  count = (nodeId: string, loadAt: number): number => {
    const times = this.byNode.get(nodeId);
    if (!times) return 0;
    const left = times.filter((t) => t + PENDING_GRACE_MS > loadAt);
    if (left.length === 0) this.byNode.delete(nodeId);
    else this.byNode.set(nodeId, left);
    return left.length;
  };

  add(nodeId: string, now = Date.now()): void {
    // A node that stopped writing its load is out of placement anyway: forget what is old.
    const times = (this.byNode.get(nodeId) ?? []).filter((t) => t > now - 30_000);
    times.push(now);
    this.byNode.set(nodeId, times);
  }
}
