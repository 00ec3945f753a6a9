/**
 * Ids that become parts of Redis keys or channels (tree, node, slot, session,
 * viewer). One rule for all: lowercase letters, digits and '-', starting with a
 * letter or digit, 1..63 characters (a DNS label, so a Kubernetes pod name
 * fits). No ':', '{', '}', whitespace or control characters can reach a key.
 */
export const ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

export type IdKind = 'tree' | 'node' | 'slot' | 'session' | 'viewer';

/** Bad input to the topology: refused before anything is written. */
export class TopologyInputError extends Error {
  override name = 'TopologyInputError';
}

export function isValidId(value: unknown): value is string {
  return typeof value === 'string' && ID_PATTERN.test(value);
}

export function assertId(kind: IdKind, value: unknown): string {
  if (!isValidId(value)) {
    const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 80)) : typeof value;
    throw new TopologyInputError(`bad ${kind} id ${shown}: expected 1..63 of a-z, 0-9, '-', not starting with '-'`);
  }
  return value;
}

export const NODE_TYPES = ['injection', 'relay', 'egress'] as const;
export type NodeType = (typeof NODE_TYPES)[number];

export function assertNodeType(value: unknown): NodeType {
  if (!NODE_TYPES.includes(value as NodeType)) throw new TopologyInputError(`bad node type ${JSON.stringify(value)}`);
  return value as NodeType;
}

/** The i-th slot a node owns (children attach to it): `{nodeId}-s{i}`. */
export function slotIdOf(nodeId: string, i: number): string {
  return `${nodeId}-s${i}`;
}

/** A node's first `n` slots. */
export function slotIdsOf(nodeId: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => slotIdOf(nodeId, i));
}
