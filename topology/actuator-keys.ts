import { assertId } from './ids.ts';

/** The actuator's Redis keys, beside the topology's: one owner for every key name. */
export const actuatorKeys = {
  /** stream: every accepted Alertmanager notification, in arrival order, until the worker has acted on it */
  inbox: 'actuator:inbox',
  /** consumer group of the inbox's workers */
  inboxGroup: 'actuator-workers',
  /** stream: the audit trail of every decision and action (GET /actions) */
  journal: 'actuator:journal',
  /** set of trees the actuator has state for */
  trees: 'actuator:trees',
  /** string "1" while the actuator is paused */
  paused: 'actuator:paused',
  /** string: "<fencing token>:<owner>" while a worker holds the tree (PX ttl) */
  lock: (tree: string) => `actuator:lock:${assertId('tree', tree)}`,
  /** counter: the fencing token of the tree's latest lock */
  fence: (tree: string) => `actuator:fence:${assertId('tree', tree)}`,
  /** hash: desired, lastScaleOutAt, lastScaleInAt */
  tree: (tree: string) => `actuator:tree:${assertId('tree', tree)}`,
  /** hash: subtree id -> JSON {slot, createdAt, nodes} of subtrees whose topology is written */
  subtrees: (tree: string) => `actuator:subtrees:${assertId('tree', tree)}`,
  /** set: firing episodes (fingerprint@startsAt) already turned into a change */
  episodes: (tree: string) => `actuator:episodes:${assertId('tree', tree)}`,
  /** hash: the tree's action in flight (kind, subtree, slot, step, episode, startedAt), for recovery after a crash */
  inflight: (tree: string) => `actuator:inflight:${assertId('tree', tree)}`,
  /** counter: the last subtree number of a tree, for deterministic names */
  subtreeSeq: (tree: string) => `actuator:subtree-seq:${assertId('tree', tree)}`,
} as const;

/** Checks a tree id from an alert label before it can reach any key. */
export function assertTreeLabel(value: unknown): string {
  return assertId('tree', value);
}
