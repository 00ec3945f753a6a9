import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startChild, type Child } from './child.ts';
import { freePort } from './ports.ts';
import { httpOk } from './wait.ts';

export interface RunningPrometheus {
  child: Child;
  url: string;
  dir: string;
  stop(): Promise<void>;
  /** An instant query; throws unless Prometheus answers status "success". */
  query(promql: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>>;
}

/**
 * Debian's prometheus on a free loopback port with `config` (an object, written
 * as JSON, which Prometheus reads as YAML) and its TSDB in a temp dir.
 * `prepare` gets the dir first, to write file_sd target files.
 */
export async function startPrometheus(config: (dir: string) => unknown, prepare?: (dir: string) => void): Promise<RunningPrometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'canopy-prom-'));
  prepare?.(dir);
  const configPath = join(dir, 'prometheus.yml');
  writeFileSync(configPath, JSON.stringify(config(dir), null, 2));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = await startChild('prometheus', 'prometheus', {
    args: [`--config.file=${configPath}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    cwd: dir,
    ready: () => httpOk(`${url}/-/ready`),
    readyTimeoutMs: 20_000,
  });
  return {
    child,
    url,
    dir,
    async stop() {
      await child.stop();
      rmSync(dir, { recursive: true, force: true });
    },
    async query(promql) {
      const res = await fetch(`${url}/api/v1/query?${new URLSearchParams({ query: promql })}`, { signal: AbortSignal.timeout(5_000) });
      const body = (await res.json()) as { status: string; error?: string; data?: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
      if (body.status !== 'success') throw new Error(`query failed: ${body.error}\n${promql}`);
      return body.data!.result;
    },
  };
}
