import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startChild, type Child } from '../process/child.ts';
import { onFreePort } from '../process/ports.ts';
import { httpOk } from '../process/wait.ts';

export interface RunningPrometheus {
  child: Child;
  url: string;
}

export interface PrometheusStart {
  /** Working directory: the config is written here, the TSDB defaults to <dir>/data. */
  dir: string;
  /** prometheus.yml contents. Relative paths in it resolve against `dir`. */
  config: string;
  tsdbPath?: string;
  port?: number;
  extraArgs?: string[];
}

/** Debian's Prometheus on a loopback port of its own, ready when /-/ready answers. */
export async function startPrometheus(o: PrometheusStart): Promise<RunningPrometheus> {
  return o.port === undefined ? onFreePort((port) => startOn(o, port)) : startOn(o, o.port);
}

async function startOn(o: PrometheusStart, port: number): Promise<RunningPrometheus> {
  const url = `http://127.0.0.1:${port}`;
  mkdirSync(o.dir, { recursive: true });
  writeFileSync(join(o.dir, 'prometheus.yml'), o.config);
  const child = await startChild('prometheus', 'prometheus', {
    cwd: o.dir,
    args: [
      `--config.file=${join(o.dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${o.tsdbPath ?? join(o.dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--web.enable-lifecycle',
      ...(o.extraArgs ?? []),
    ],
    ready: () => httpOk(`${url}/-/ready`),
    readyTimeoutMs: 60_000,
    port,
  });
  return { child, url };
}

/** An instant query through the HTTP API; throws on a non-success answer. */
export async function instantQuery(
  url: string,
  query: string,
  params: Record<string, string> = {},
): Promise<{ result: Array<{ metric: Record<string, string>; value: [number, string] }>; stats?: unknown }> {
  const body = new URLSearchParams({ query, ...params });
  const res = await fetch(`${url}/api/v1/query`, { method: 'POST', body, signal: AbortSignal.timeout(30_000) });
  const json = (await res.json()) as { status: string; error?: string; data: { result: never; stats?: unknown } };
  if (json.status !== 'success') throw new Error(`query failed (${res.status}): ${json.error}: ${query}`);
  return json.data;
}

export interface RangeSeries {
  metric: Record<string, string>;
  values: Array<[number, string]>;
}

/** A range query through the HTTP API; throws on a non-success answer. */
export async function rangeQuery(
  url: string,
  query: string,
  startSec: number,
  endSec: number,
  stepSec: number,
): Promise<RangeSeries[]> {
  const body = new URLSearchParams({ query, start: String(startSec), end: String(endSec), step: String(stepSec) });
  const res = await fetch(`${url}/api/v1/query_range`, { method: 'POST', body, signal: AbortSignal.timeout(30_000) });
  const json = (await res.json()) as { status: string; error?: string; data: { result: RangeSeries[] } };
  if (json.status !== 'success') throw new Error(`range query failed (${res.status}): ${json.error}: ${query}`);
  return json.data.result;
}
