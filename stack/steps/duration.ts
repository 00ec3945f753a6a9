import { z } from 'zod';

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000 };

/** A scenario duration ("500ms", "30s", "2m"), parsed to milliseconds. */
export const duration = z
  .string()
  .regex(/^\d+(ms|s|m)$/, 'a duration such as 500ms, 30s or 2m')
  .transform((d) => {
    const [, n, u] = /^(\d+)(ms|s|m)$/.exec(d)!;
    return Number(n) * UNITS[u!]!;
  });
