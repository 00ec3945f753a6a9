import { assertId } from './ids.ts';

/** The actuator's Redis keys, beside the topology's: one owner for every key name. */
export const actuatorKeys = {
  /** stream: every accepted Alertmanager notification, in arrival order, until the worker has acted on it */
  inbox: 'actuator:inbox',
  /** consumer group of the inbox's workers */
  inboxGroup: 'actuator-workers',
} as const;

/** Checks a tree id from an alert label before it can reach any key. */
export function assertTreeLabel(value: unknown): string {
  return assertId('tree', value);
}
