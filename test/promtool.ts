import { spawnSync } from 'node:child_process';

/** `promtool check metrics` on an exposition: the problems it reports, one per line. */
export function promtoolCheckMetrics(exposition: string): string[] {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: exposition, encoding: 'utf8', timeout: 30_000 });
  if (r.error) throw r.error;
  const out = `${r.stdout}${r.stderr}`
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  if (r.status !== 0 && out.length === 0) throw new Error(`promtool exited ${r.status} without a finding`);
  return out;
}
