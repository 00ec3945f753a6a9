import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startChild, type Child } from '../process/child.ts';
import { onFreePort } from '../process/ports.ts';

export interface RunningRedis {
  child: Child;
  port: number;
  url: string;
  stop(): Promise<void>;
}

/** Debian's redis-server on a free loopback port, no persistence, in a temp dir. */
export async function startRedis(port?: number): Promise<RunningRedis> {
  return port === undefined ? onFreePort(startRedisOn) : startRedisOn(port);
}

async function startRedisOn(p: number): Promise<RunningRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'canopy-redis-'));
  let child: Child;
  try {
    child = await startChild('redis-server', 'redis-server', {
      args: [
        '--port',
        String(p),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
        '--daemonize',
        'no',
        '--protected-mode',
        'yes',
      ],
      cwd: dir,
      ready: () => pong(p),
      readyTimeoutMs: 10_000,
      port: p,
    });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    child,
    port: p,
    url: `redis://127.0.0.1:${p}`,
    async stop() {
      await child.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** True once Redis answers PING on `port` (inline protocol, no client needed). */
function pong(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(port, '127.0.0.1');
    let buf = '';
    s.setTimeout(1_000, () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(false));
    s.once('connect', () => s.write('PING\r\n'));
    s.on('data', (c) => {
      buf += c.toString();
      if (buf.includes('\r\n')) {
        s.destroy();
        resolve(buf.startsWith('+PONG'));
      }
    });
  });
}
