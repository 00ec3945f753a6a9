import { parser } from '@prometheus-io/lezer-promql';
import { parse } from 'yaml';

/**
 * The distinct selectors of raw series (not recorded ones, whose names hold a
 * colon, nor ALERTS) in rule files: what any evaluation of those rules must
 * read at least once. Range selectors keep their range.
 */
export function rawSelectors(ruleFiles: string[]): string[] {
  const out = new Set<string>();
  for (const file of ruleFiles) {
    const groups = (parse(file) as { groups: Array<{ rules: Array<{ expr: string }> }> }).groups;
    for (const { expr } of groups.flatMap((g) => g.rules)) {
      let inMatrix = -1;
      parser.parse(expr).iterate({
        enter: (n) => {
          if (n.type.name === 'MatrixSelector') inMatrix = n.to;
          else if (n.type.name !== 'VectorSelector' || n.from < inMatrix) return;
          const text = expr.slice(n.from, n.to).replace(/\s+/g, ' ');
          const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(text)?.[0] ?? '';
          if (!name.includes(':') && name !== 'ALERTS') out.add(text);
        },
      });
    }
  }
  return [...out];
}
