import { z } from 'zod';

/** The one duration syntax of flags and scenario files: a whole number and ms, s, m or h. */
const DURATION = /^(\d{1,7})(ms|s|m|h)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

export const DURATION_FORM = 'a duration such as 500ms, 30s, 5m or 1h';

/** Milliseconds in `text` (e.g. "30s" -> 30000); null when it is not a duration. */
export function parseDuration(text: string): number | null {
  const m = DURATION.exec(text.trim());
  return m ? Number(m[1]) * UNIT_MS[m[2]!]! : null;
}

/** A duration string in validated input, as milliseconds. */
export const duration = z.string().transform((text, ctx) => {
  const ms = parseDuration(text);
  if (ms === null) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: DURATION_FORM });
    return z.NEVER;
  }
  return ms;
});
