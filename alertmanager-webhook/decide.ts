import type { ScaleOutReason, ScalingRequest } from './payload.ts';

/**
 * How a scale-out is sized. `level`: converge to the size the alert asks for
 * (`desired_subtrees`), again after each cooldown while the tree is short.
 * `episode`: one subtree per firing episode, whatever the size (the policy
 * before sizing, kept as the benchmarks' baseline).
 */
export const SCALING_POLICIES = ['level', 'episode'] as const;
export type Scaling = (typeof SCALING_POLICIES)[number];

/** Reasons whose size is the whole answer: a tree at that size needs no more for them. */
const SIZED_REASONS: ReadonlySet<string> = new Set<ScaleOutReason>(['port_pool', 'forecast']);

/** Hard bounds and timings of the actuator's decisions. */
export interface Policy {
  scaling: Scaling;
  /** Most subtrees one scale-out adds (level scaling). */
  maxStepSubtrees: number;
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
 * Desired state, not "+1 per notification". A scale-out with a size larger
 * than the tree's (level scaling) moves the tree towards that size, at most
 * `maxStepSubtrees` at once, within the bounds, after the cooldown, and never
 * past it: a request recorded before the tree's last scale-out is a repeat of
 * what that scale-out acted on. Without such a size, a tree's count changes at
 * most once per firing episode; a tree at the size asked for on a capacity
 * reason (`port_pool`, `forecast`) needs nothing. Requests refused for a
 * reason that passes (cooldown, pause, a bound) leave the episode unmarked,
 * so Alertmanager's next repeat can still act on it.
 */
export function decide(
  r: ScalingRequest,
  tree: TreeState,
  totalDesired: number,
  policy: Policy,
  now: number,
): Decision {
  if (r.status === 'resolved') return { action: 'none', why: `${r.kind} resolved: nothing to undo` };
  const asked = policy.scaling === 'level' && r.kind === 'scale-out' ? r.desiredSubtrees : undefined;
  if (asked !== undefined && asked > tree.desired) {
    if (r.receivedAt !== undefined && tree.lastScaleOutAt !== null && r.receivedAt < tree.lastScaleOutAt)
      return { action: 'none', why: 'sized before the last scale-out', duplicate: true };
  } else if (asked !== undefined && SIZED_REASONS.has(r.reason)) {
    return { action: 'none', why: `at the ${asked} subtrees asked for`, duplicate: true };
  } else if (tree.episodesActedOn.has(episodeOf(r))) {
    return { action: 'none', why: 'episode already acted on', duplicate: true };
  }
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
    const why = `${r.reason} (${r.urgency})`;
    if (asked === undefined || asked <= tree.desired) return { action: 'scale-out', desired: tree.desired + 1, why };
    const desired = Math.min(
      asked,
      policy.maxSubtrees,
      tree.desired + policy.globalMaxSubtrees - totalDesired,
      tree.desired + policy.maxStepSubtrees,
    );
    const step = desired < asked ? `, ${desired - tree.desired} this step` : '';
    return { action: 'scale-out', desired, why: `${why}: ${asked} subtrees asked for, ${tree.desired} running${step}` };
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
