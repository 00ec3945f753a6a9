import { z } from 'zod';
import { ID_PATTERN } from './ids.ts';

const id = z.string().regex(ID_PATTERN);

/** Published on `topology:{slot}` (the seed's shape). */
export const topologyEventSchema = z
  .object({
    type: z.enum(['children-added', 'children-removed']),
    childIds: z.array(id).min(1).max(1024),
  })
  .strict();
export type TopologyEvent = z.infer<typeof topologyEventSchema>;

/** Published on `session-events:{tree}` when a session starts or ends. */
export const sessionEventSchema = z
  .object({
    type: z.enum(['session-started', 'session-ended']),
    sessionId: id,
  })
  .strict();
export type SessionEvent = z.infer<typeof sessionEventSchema>;

/** Why a viewer asked for a keyframe: a Picture Loss Indication or a Full Intra Request. */
export const KEYFRAME_REASONS = ['pli', 'fir'] as const;
export type KeyframeReason = (typeof KEYFRAME_REASONS)[number];

/**
 * Published on `keyframe-requests:{injection node}` by an egress node whose
 * viewer of `sessionId` sent a PLI or FIR (after the egress's rate limit).
 */
export const keyframeRequestEventSchema = z
  .object({
    type: z.literal('keyframe-request'),
    sessionId: id,
    /** The egress node that asked. */
    nodeId: id,
    reason: z.enum(KEYFRAME_REASONS),
    /** When the egress node sent it, ms since the epoch. */
    at: z.number().int().min(0).max(8.64e15),
  })
  .strict();
export type KeyframeRequestEvent = z.infer<typeof keyframeRequestEventSchema>;

export type Parsed<T> = { ok: true; event: T } | { ok: false; error: string };

/** Validates a pub/sub payload: bad JSON or a bad shape is an error string, never a throw. */
export function parseEvent<T>(schema: z.ZodType<T>, payload: string): Parsed<T> {
  if (payload.length > 256 * 1024) return { ok: false, error: 'payload over 256 KiB' };
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return { ok: false, error: 'not JSON' };
  }
  const r = schema.safeParse(value);
  return r.success
    ? { ok: true, event: r.data }
    : { ok: false, error: r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ') };
}
