import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { startChild, type Child } from '../process/child.ts';
import { fileURLToPath } from 'node:url';
import { onFreePort } from '../process/ports.ts';
import { httpOk } from '../process/wait.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface RunningAlertmanager {
  child: Child;
  url: string;
}

export interface AlertmanagerConfigOptions {
  /** Where the actuator receiver posts. */
  actuatorUrl: string;
  /** The bearer token the actuator expects. */
  token: string;
  /** Timings of the actuator route, compressed for tests and the demo. */
  groupWait?: string;
  groupInterval?: string;
  repeatInterval?: string;
  /** Where the Slack receiver posts (a bench's listener); by default nowhere reachable. */
  slackUrl?: string;
}

/**
 * deploy/alertmanager.yml with its deployment paths pointed into `dir`: the
 * routing under test is the shipped one; only addresses, secrets and the
 * actuator route's timings change.
 */
export function alertmanagerConfig(dir: string, o: AlertmanagerConfigOptions): string {
  const cfg = parse(readFileSync(join(ROOT, 'deploy/alertmanager.yml'), 'utf8')) as {
    route: { routes: Array<Record<string, unknown>> };
    receivers: Array<{
      name: string;
      webhook_configs?: Array<Record<string, unknown>>;
      slack_configs?: Array<Record<string, unknown>>;
    }>;
  };
  writeFileSync(join(dir, 'actuator-token'), `${o.token}\n`);
  // Nothing listens there: Slack is not reachable from here, and must not be.
  writeFileSync(join(dir, 'slack-webhook-url'), `${o.slackUrl ?? 'http://127.0.0.1:9/'}\n`);
  for (const r of cfg.receivers) {
    for (const w of r.webhook_configs ?? []) {
      w.url = o.actuatorUrl;
      (w.http_config as { authorization: { credentials_file: string } }).authorization.credentials_file = join(
        dir,
        'actuator-token',
      );
    }
    for (const s of r.slack_configs ?? []) s.api_url_file = join(dir, 'slack-webhook-url');
  }
  const actuatorRoute = cfg.route.routes.find((r) => r.receiver === 'actuator')!;
  if (o.groupWait) actuatorRoute.group_wait = o.groupWait;
  if (o.groupInterval) actuatorRoute.group_interval = o.groupInterval;
  if (o.repeatInterval) actuatorRoute.repeat_interval = o.repeatInterval;
  return stringify(cfg);
}

/** Debian's Alertmanager 0.25 on a loopback port of its own, clustering off. */
export async function startAlertmanager(dir: string, config: string, port?: number): Promise<RunningAlertmanager> {
  return port === undefined
    ? onFreePort((p) => startAlertmanagerOn(dir, config, p))
    : startAlertmanagerOn(dir, config, port);
}

async function startAlertmanagerOn(dir: string, config: string, p: number): Promise<RunningAlertmanager> {
  const url = `http://127.0.0.1:${p}`;
  mkdirSync(join(dir, 'data'), { recursive: true });
  writeFileSync(join(dir, 'alertmanager.yml'), config);
  const child = await startChild('alertmanager', 'prometheus-alertmanager', {
    cwd: dir,
    args: [
      `--config.file=${join(dir, 'alertmanager.yml')}`,
      `--storage.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${p}`,
      '--cluster.listen-address=',
    ],
    ready: () => httpOk(`${url}/-/ready`),
    port: p,
  });
  return { child, url };
}

/** Pushes alerts through Alertmanager's v2 API, as Prometheus does. */
export async function pushAlerts(
  url: string,
  alerts: Array<{
    labels: Record<string, string>;
    annotations?: Record<string, string>;
    startsAt?: string;
    endsAt?: string;
  }>,
): Promise<void> {
  const res = await fetch(`${url}/api/v2/alerts`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(alerts),
    signal: AbortSignal.timeout(5_000),
  });
  if (!res.ok) throw new Error(`Alertmanager refused the alerts: ${res.status} ${await res.text()}`);
}
