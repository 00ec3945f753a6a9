import { fileURLToPath } from 'node:url';
import { startChild, type Child } from '../process/child.ts';
import { freePort } from '../process/ports.ts';
import { httpOk } from '../process/wait.ts';

const BIN = fileURLToPath(new URL('../bin/canopy.mjs', import.meta.url));

export interface RunningNode {
  child: Child;
  id: string;
  port: number;
  url: string;
  fwdAudio?: number;
  fwdVideo?: number;
  args: string[];
}

export interface NodeStart {
  type: 'injection' | 'relay' | 'egress';
  id: string;
  redisUrl: string;
  extra?: string[];
  /** Reuse these ports (a restart). */
  port?: number;
  fwdAudio?: number;
  fwdVideo?: number;
  /** How long to wait for /readyz (60 s unless told: a machine busy with other tests starts node apps slowly). */
  readyTimeoutMs?: number;
}

/** Starts `canopy node <type>` as a real child process on free loopback ports and waits for /readyz. */
export async function startNode(o: NodeStart): Promise<RunningNode> {
  const port = o.port ?? (await freePort());
  const args = [
    BIN,
    'node',
    o.type,
    '--node-id',
    o.id,
    '--redis-url',
    o.redisUrl,
    '--port',
    String(port),
    '--listen-host',
    '127.0.0.1',
    '--log-level',
    'info',
  ];
  let fwdAudio: number | undefined;
  let fwdVideo: number | undefined;
  if (o.type !== 'injection') {
    fwdAudio = o.fwdAudio ?? (await freePort());
    fwdVideo = o.fwdVideo ?? (await freePort());
    while (fwdVideo === fwdAudio) fwdVideo = await freePort();
    args.push('--forwarder-audio-port', String(fwdAudio), '--forwarder-video-port', String(fwdVideo));
  }
  args.push(...(o.extra ?? []));
  const url = `http://127.0.0.1:${port}`;
  const child = await startChild(o.id, process.execPath, {
    args,
    ready: () => httpOk(`${url}/readyz`),
    readyTimeoutMs: o.readyTimeoutMs ?? 60_000,
  });
  return { child, id: o.id, port, url, fwdAudio, fwdVideo, args };
}

export async function metricsOf(n: RunningNode): Promise<string> {
  const r = await fetch(`${n.url}/metrics`, { signal: AbortSignal.timeout(3_000) });
  return r.text();
}

export async function json(
  url: string,
  init: RequestInit & { body?: string } = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const r = await fetch(url, {
    ...init,
    headers: { 'content-type': 'application/json', ...(init.headers ?? {}) },
    signal: AbortSignal.timeout(5_000),
  });
  const text = await r.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON */
  }
  return { status: r.status, body, headers: r.headers };
}
