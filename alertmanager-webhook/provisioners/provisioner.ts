import type { ScrapeTarget } from '../targets.ts';

/**
 * What the actuator asks of a place that runs egress nodes. Every call is
 * idempotent by the subtree's deterministic name, so a restarted actuator can
 * repeat any step of a scale-out or scale-in safely.
 */
export interface SubtreeSpec {
  tree: string;
  /** Deterministic, a valid topology id: `<tree>-st-<n>`. */
  subtree: string;
  /** The relay slot its nodes attach to. */
  slot: string;
  /** Egress nodes in the subtree. */
  size: number;
}

export interface SubtreeNode {
  /** A valid topology id (a pod name, or a local process's node id). */
  id: string;
}

export interface RunningSubtree {
  tree: string;
  subtree: string;
  /** The relay slot it was created for, where the provisioner keeps it (state file, Deployment env). */
  slot?: string;
  /** Its egress node ids, where the provisioner knows them without asking each node. */
  nodes?: string[];
  /** When it was created (ms), where known. */
  createdAt?: number;
}

export interface Provisioner {
  readonly name: string;
  /** Starts the subtree's nodes; success when it already exists. */
  create(spec: SubtreeSpec): Promise<void>;
  /**
   * Where the subtree's nodes will answer scrapes, known as soon as `create`
   * returned (local processes). Absent where only a running node has an
   * address (a pod's IP): Prometheus discovers those itself.
   */
  plannedTargets?(spec: SubtreeSpec): ScrapeTarget[];
  /** Resolves with the subtree's nodes once all are ready; throws after `timeoutMs`. */
  waitReady(spec: SubtreeSpec, timeoutMs: number): Promise<SubtreeNode[]>;
  /** Stops and removes the subtree; success when it is already gone. */
  delete(tree: string, subtree: string): Promise<void>;
  /** Subtrees this provisioner runs (of one tree, or all), for reconcile. */
  list(tree?: string): Promise<RunningSubtree[]>;
}

/** A provisioner's refusal or failure, with the step it happened at. */
export class ProvisionerError extends Error {
  override name = 'ProvisionerError';
  constructor(
    readonly step: 'create' | 'wait-ready' | 'delete' | 'list',
    message: string,
  ) {
    super(message);
  }
}
