import { Counter, Gauge, type Registry } from 'prom-client';

/** One metric family as the seed defines it: name, type, help text, exposed labels. */
export interface FamilySpec {
  readonly name: string;
  readonly help: string;
  readonly type: 'gauge' | 'counter';
  readonly labelNames: readonly string[];
}

type LabelOf<S extends FamilySpec> = S['labelNames'][number];
export type Family<S extends FamilySpec> = S['type'] extends 'gauge' ? Gauge<LabelOf<S>> : Counter<LabelOf<S>>;
export type Families<T extends Record<string, FamilySpec>> = {
  -readonly [K in keyof T]: Family<T[K]>;
};

/** Registers every family of `specs` in `registry` and returns them by key. */
export function createFamilies<T extends Record<string, FamilySpec>>(specs: T, registry: Registry): Families<T> {
  const out: Record<string, Gauge<string> | Counter<string>> = {};
  for (const [key, spec] of Object.entries(specs)) {
    const config = {
      name: spec.name,
      help: spec.help,
      labelNames: [...spec.labelNames],
      registers: [registry],
    };
    out[key] = spec.type === 'gauge' ? new Gauge(config) : new Counter(config);
  }
  return out as Families<T>;
}

/**
 * Sets a counter to a cumulative total read from elsewhere (a forwarder's
 * STATS). A smaller total than before is a restart of the source, which
 * Prometheus' rate() reads as a counter reset.
 */
export function setCounterTotal<L extends string>(
  counter: Counter<L>,
  labels: Partial<Record<L, string | number>>,
  total: number,
): void {
  if (!Number.isFinite(total) || total < 0) {
    throw new RangeError(`counter total must be a finite number >= 0, got ${total}`);
  }
  counter.remove(labels);
  counter.inc(labels, total);
}
