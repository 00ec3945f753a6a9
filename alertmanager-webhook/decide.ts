import type { ScalingRequest } from './payload.ts';

/** Hard bounds and timings of the actuator's decisions. */
export interface Policy {
  minSubtrees: number;
  maxSubtrees: number;
  /** Across all trees. */
  globalMaxSubtrees: number;
  /** No second scale-out of a tree before this long after the last one. */
  scaleOutCooldownMs: number;
  /** No scale-in before this long after the tree's last change (longer than the cooldown). */
  scaleInStabilisationMs: number;
  /** A new subtree is never the one removed before this age. */
  protectNewSubtreeMs: number;
  paused: boolean;
}

export interface SubtreeState {
  subtree: string;
  createdAt: number;
  /** Viewers on its nodes when last looked at; the least loaded goes first. */
  viewers: number;
}

/** What the actuator knows of one tree when a request arrives. */
export interface TreeState {
  desired: number;
  subtrees: SubtreeState[];
  lastScaleOutAt: number | null;
  lastScaleInAt: number | null;
  /** Firing episodes (fingerprint@startsAt) already turned into a change. */
  episodesActedOn: ReadonlySet<string>;
}

export type Decision =
  | { action: 'none'; why: string; duplicate?: boolean }
  | { action: 'scale-out'; desired: number; why: string }
  | { action: 'scale-in'; desired: number; subtree: string; why: string };

export function episodeOf(r: ScalingRequest): string {
  return `${r.fingerprint}@${r.startsAt}`;
}

/**
 * Desired state, not "+1 per notification": a tree's subtree count changes at
 * most once per firing episode, within the bounds and timings of `policy`.
 * Requests refused for a reason that passes (cooldown, pause, a bound) leave
 * the episode unmarked, so Alertmanager's next repeat can still act on it.
 */
export function decide(
  r: ScalingRequest,
  tree: TreeState,
  totalDesired: number,
  policy: Policy,
  now: number,
): Decision {
  if (r.status === 'resolved') return { action: 'none', why: `${r.kind} resolved: nothing to undo` };
  if (tree.episodesActedOn.has(episodeOf(r)))
    return { action: 'none', why: 'episode already acted on', duplicate: true };
  if (policy.paused) return { action: 'none', why: 'paused' };
  const lastChange = Math.max(tree.lastScaleOutAt ?? -Infinity, tree.lastScaleInAt ?? -Infinity);

  if (r.kind === 'scale-out') {
    if (tree.desired >= policy.maxSubtrees)
      return { action: 'none', why: `at the tree's maximum of ${policy.maxSubtrees} subtrees` };
    if (totalDesired >= policy.globalMaxSubtrees)
      return { action: 'none', why: `at the global maximum of ${policy.globalMaxSubtrees} subtrees` };
    if (tree.lastScaleOutAt !== null && now - tree.lastScaleOutAt < policy.scaleOutCooldownMs) {
      return {
        action: 'none',
        why: `scale-out cooldown (${Math.ceil((policy.scaleOutCooldownMs - (now - tree.lastScaleOutAt)) / 1000)} s left)`,
      };
    }
    return { action: 'scale-out', desired: tree.desired + 1, why: `${r.reason} (${r.urgency})` };
  }

  if (tree.desired <= policy.minSubtrees)
    return { action: 'none', why: `at the tree's minimum of ${policy.minSubtrees} subtrees` };
  if (lastChange !== -Infinity && now - lastChange < policy.scaleInStabilisationMs) {
    return {
      action: 'none',
      why: `scale-in stabilisation (${Math.ceil((policy.scaleInStabilisationMs - (now - lastChange)) / 1000)} s left)`,
    };
  }
  const candidates = tree.subtrees
    .filter((s) => now - s.createdAt >= policy.protectNewSubtreeMs)
    .sort((a, b) => a.viewers - b.viewers || a.createdAt - b.createdAt || a.subtree.localeCompare(b.subtree));
  const victim = candidates[0];
  if (!victim) return { action: 'none', why: 'every subtree is still protected' };
  return {
    action: 'scale-in',
    desired: tree.desired - 1,
    subtree: victim.subtree,
    why: `low usage; ${victim.subtree} has ${victim.viewers} viewers`,
  };
}

const URGENCY_ORDER = { critical: 0, high: 1, low: 2 } as const;

/** When several trees ask at once: critical first, then high, then low; arrival order within. */
export function byUrgency<T extends { request: ScalingRequest }>(items: T[]): T[] {
  return items
    .map((x, i) => ({ x, i }))
    .sort((a, b) => URGENCY_ORDER[a.x.request.urgency] - URGENCY_ORDER[b.x.request.urgency] || a.i - b.i)
    .map(({ x }) => x);
}
