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
