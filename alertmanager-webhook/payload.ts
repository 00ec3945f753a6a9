import { z } from 'zod';
import { ID_PATTERN } from '../topology/index.ts';

/**
 * Alertmanager 0.25's webhook payload, version "4", checked strictly: unknown
 * fields, a wrong version or a malformed alert refuse the whole notification.
 */
const labelSet = z.record(
  z
    .string()
    .regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/)
    .max(128),
  z.string().max(1024),
);
const time = z
  .string()
  .max(64)
  .refine((s) => !Number.isNaN(Date.parse(s)), 'not a timestamp');

const alertSchema = z
  .object({
    status: z.enum(['firing', 'resolved']),
    labels: labelSet,
    annotations: labelSet,
    startsAt: time,
    endsAt: time,
    generatorURL: z.string().max(4096),
    fingerprint: z.string().regex(/^[0-9a-f]{16}$/, 'a 16-digit hex fingerprint'),
  })
  .strict();

export const notificationSchema = z
  .object({
    version: z.literal('4'),
    groupKey: z.string().max(4096),
    truncatedAlerts: z.number().int().nonnegative(),
    status: z.enum(['firing', 'resolved']),
    receiver: z.string().max(256),
    groupLabels: labelSet,
    commonLabels: labelSet,
    commonAnnotations: labelSet,
    externalURL: z.string().max(4096),
    alerts: z.array(alertSchema).max(1000),
  })
  .strict();

export type Notification = z.infer<typeof notificationSchema>;
export type WebhookAlert = z.infer<typeof alertSchema>;

export const SCALE_OUT = 'MediaTreeScaleOut';
export const SCALE_IN = 'MediaTreeScaleIn';

/** One scaling decision an alert asks for; a firing episode is fingerprint + startsAt. */
export interface ScalingRequest {
  kind: 'scale-out' | 'scale-in';
  tree: string;
  status: 'firing' | 'resolved';
  urgency: 'critical' | 'high' | 'low';
  reason: string;
  fingerprint: string;
  startsAt: string;
  /**
   * Subtrees beyond the baseline the rules size the tree at (the scale-out
   * alert's `desired_subtrees` annotation); absent when the sizing had no inputs.
   */
  desiredSubtrees?: number;
  /** When the notification was recorded (ms), set by the worker from its inbox entry. */
  receivedAt?: number;
}

/** The `reason` label a scale-out alert may carry (the rule pack's reasons). */
export const SCALE_OUT_REASONS = ['unhealthy_nodes', 'cpu', 'port_pool', 'packet_loss', 'forecast'] as const;
export type ScaleOutReason = (typeof SCALE_OUT_REASONS)[number];

/** Whole subtrees, as the rule pack prints them; '' when the sizing had no inputs. */
export const MAX_DESIRED_SUBTREES = 100_000;
const desiredAnnotation = z
  .string()
  .regex(/^(\d{1,6})?$/, 'a whole number of subtrees, or empty')
  .transform((s) => (s === '' ? undefined : Number(s)))
  .refine((n) => n === undefined || n <= MAX_DESIRED_SUBTREES, `at most ${MAX_DESIRED_SUBTREES}`)
  .optional();

const scaleOutLabels = z.object({
  tree_id: z.string(),
  component: z.literal('scaling'),
  urgency: z.enum(['critical', 'high']),
  reason: z.enum(SCALE_OUT_REASONS),
});
const scaleInLabels = z.object({
  tree_id: z.string(),
  component: z.literal('scaling'),
  urgency: z.literal('low'),
});

export class PayloadError extends Error {
  override name = 'PayloadError';
}

/**
 * The scaling requests of a notification; other alerts (any alertname but the
 * two scaling ones) are ignored. A scaling alert with a bad label refuses the
 * whole notification: nothing of it is recorded.
 */
export function scalingRequests(n: Notification): { requests: ScalingRequest[]; ignored: number } {
  const requests: ScalingRequest[] = [];
  let ignored = 0;
  for (const [i, a] of n.alerts.entries()) {
    const name = a.labels.alertname;
    if (name !== SCALE_OUT && name !== SCALE_IN) {
      ignored++;
      continue;
    }
    const parsed = (name === SCALE_OUT ? scaleOutLabels : scaleInLabels).safeParse(a.labels);
    if (!parsed.success) {
      throw new PayloadError(`alerts[${i}] (${name}): ${describe(parsed.error)}`);
    }
    const tree = parsed.data.tree_id;
    if (!ID_PATTERN.test(tree)) {
      throw new PayloadError(
        `alerts[${i}] (${name}): bad tree_id ${JSON.stringify(tree.slice(0, 80))}: expected 1..63 of a-z, 0-9, '-'`,
      );
    }
    const desired = desiredAnnotation.safeParse(a.annotations.desired_subtrees);
    if (!desired.success) {
      throw new PayloadError(
        `alerts[${i}] (${name}): bad desired_subtrees ${JSON.stringify(String(a.annotations.desired_subtrees).slice(0, 40))}: ${describe(desired.error)}`,
      );
    }
    requests.push({
      kind: name === SCALE_OUT ? 'scale-out' : 'scale-in',
      tree,
      status: a.status,
      urgency: parsed.data.urgency,
      reason: 'reason' in parsed.data ? parsed.data.reason : 'low_usage',
      fingerprint: a.fingerprint,
      startsAt: new Date(a.startsAt).toISOString(),
      ...(desired.data === undefined ? {} : { desiredSubtrees: desired.data }),
    });
  }
  return { requests, ignored };
}

/** Parses a raw body: JSON, then the schema. Throws PayloadError with a reason a person can act on. */
export function parseNotification(body: Buffer | string): Notification {
  let json: unknown;
  try {
    json = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
  } catch (err) {
    throw new PayloadError(`body is not JSON: ${(err as Error).message}`);
  }
  const r = notificationSchema.safeParse(json);
  if (!r.success) throw new PayloadError(`not an Alertmanager version 4 notification: ${describe(r.error)}`);
  return r.data;
}

function describe(err: z.ZodError): string {
  return err.issues
    .slice(0, 3)
    .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
    .join('; ');
}
