import { parser } from '@prometheus-io/lezer-promql';

/** Syntax errors lezer-promql finds in `expr`, as "at <offset>: <text>"; empty when it parses. */
export function promqlErrors(expr: string): string[] {
  const errors: string[] = [];
  parser.parse(expr).iterate({
    enter: (n) => {
      if (n.type.isError)
        errors.push(`at ${n.from}: ${JSON.stringify(expr.slice(Math.max(0, n.from - 10), n.to + 10))}`);
    },
  });
  return errors;
}
