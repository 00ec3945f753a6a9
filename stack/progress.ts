import { evalJsonnet } from '../rules/jsonnet.ts';
import { instantQuery } from '../servers/prometheus.ts';

export interface Snapshot {
  viewers: number | null;
  sessions: number | null;
  egressUp: number | null;
  maxPool: number | null;
  firing: string[];
  lastAction: string | null;
}

const num = (v: number | null, digits = 0) => (v === null ? '-' : v.toFixed(digits));

/** The one progress line: viewers, sessions, egress nodes, max pool, alerts firing, the last action. */
export function progressLine(s: Snapshot): string {
  return [
    `viewers ${num(s.viewers)}`,
    `sessions ${num(s.sessions)}`,
    `egress ${num(s.egressUp)}`,
    `max pool ${num(s.maxPool)}%`,
    `firing ${s.firing.length ? s.firing.join(',') : '-'}`,
    `last action ${s.lastAction ?? '-'}`,
  ].join(' | ');
}

/** Reads a snapshot from the stack's Prometheus (recorded series) and actuator (journal). */
export async function snapshot(prometheusUrl: string, actuatorUrl: string): Promise<Snapshot> {
  const r = recorded();
  const one = async (expr: string) => {
    const res = await instantQuery(prometheusUrl, expr).catch(() => null);
    const v = res?.result[0]?.value[1];
    return v === undefined ? null : Number(v);
  };
  const alerts = await instantQuery(prometheusUrl, 'count by (alertname) (ALERTS{alertstate="firing"})').catch(
    () => null,
  );
  const journal = await fetch(`${actuatorUrl}/actions?limit=20`, { signal: AbortSignal.timeout(2_000) })
    .then((res) => res.json() as Promise<{ actions: Array<{ kind: string; result: string; subtree?: string }> }>)
    .catch(() => null);
  // The last action taken (or failed): a request skipped (already at the size
  // asked, say) right after a scale-out would hide it within milliseconds.
  const a = journal?.actions.find((x) => x.result !== 'skipped');
  return {
    viewers: await one(`sum(${r.treeViewers})`),
    sessions: await one(`sum(${r.treeSessions})`),
    egressUp: await one(`sum(${r.treeEgressUp})`),
    maxPool: await one(`max(${r.treePortPool})`),
    firing: (alerts?.result ?? []).map((x) => x.metric.alertname ?? '?').sort(),
    lastAction: a ? `${a.kind} ${a.result}${a.subtree ? ` ${a.subtree}` : ''}` : null,
  };
}

let recordedNames: Record<string, string> | undefined;
function recorded(): Record<string, string> {
  recordedNames ??= evalJsonnet("(import 'mixin.libsonnet').recorded") as Record<string, string>;
  return recordedNames;
}

/**
 * Polls every second: on a terminal one line rewritten in place, elsewhere a
 * plain line each time it changes. Returns a stop function.
 */
export function startProgress(
  prometheusUrl: string,
  actuatorUrl: string,
  out: { isTTY?: boolean; write(s: string): unknown },
  intervalMs = 1_000,
): () => void {
  let last = '';
  let stopped = false;
  let busy = false;
  const tick = async () => {
    if (busy || stopped) return;
    busy = true;
    try {
      const line = progressLine(await snapshot(prometheusUrl, actuatorUrl));
      if (stopped) return;
      if (out.isTTY) out.write(`\r\x1b[2K${line}`);
      else if (line !== last) out.write(`${line}\n`);
      last = line;
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void tick(), intervalMs);
  void tick();
  return () => {
    stopped = true;
    clearInterval(timer);
    if (out.isTTY && last) out.write('\n');
  };
}
