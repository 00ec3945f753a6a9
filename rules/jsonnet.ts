import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';

/** jsonnetfmt's options for this repository's Jsonnet: the formatter's check and `canopy render` share them. */
export const JSONNETFMT_STYLE = ['-n', '2', '--max-blank-lines', '2', '--string-style', 's', '--comment-style', 's'];

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Evaluates a Jsonnet snippet with rules/ on the import path; returns its JSON value. */
export function evalJsonnet(snippet: string): unknown {
  const out = execFileSync('jsonnet', ['-J', `${ROOT}/rules`, '-J', ROOT, '-e', snippet], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  });
  return JSON.parse(out);
}

/** The rule pack with `_config` overrides (a Jsonnet object body), as two YAML files' contents. */
export function renderRulePack(configOverrides = ''): { rules: string; alerts: string } {
  const v = evalJsonnet(
    `local m = (import 'mixin.libsonnet') + { _config+:: { ${configOverrides} } }; { rules: m.prometheusRules, alerts: m.prometheusAlerts }`,
  ) as { rules: unknown; alerts: unknown };
  return { rules: toYaml(v.rules), alerts: toYaml(v.alerts) };
}

export function toYaml(v: unknown): string {
  return stringify(v, { lineWidth: 0 });
}
