import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startChild, type Child } from '../process/child.ts';
import { onFreePort } from '../process/ports.ts';

export interface RunningRedis {
  /** The current process (a new one after `start`). */
  readonly child: Child;
  port: number;
  url: string;
  /** Stops it for good and removes its dir. */
  stop(): Promise<void>;
  /**
   * Stops it for a while: with `keepData` its dataset is saved first (a
   * maintenance stop loses nothing); without, it is gone (a crash on a
   * machine that lost its disk).
   */
  halt(o: { keepData: boolean }): Promise<void>;
  /** Starts it again on the same port and dir, loading what `halt` kept. */
  start(): Promise<void>;
}

export interface RedisOptions {
  /** Addresses to listen on besides 127.0.0.1 (the local stack's gateway to its node namespaces). */
  alsoBind?: string[];
}

/** Debian's redis-server on a free loopback port, no persistence, in a temp dir. */
export async function startRedis(port?: number, o: RedisOptions = {}): Promise<RunningRedis> {
  return port === undefined ? onFreePort((p) => startRedisOn(p, o)) : startRedisOn(port, o);
}

async function startRedisOn(p: number, o: RedisOptions): Promise<RunningRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'canopy-redis-'));
  let child: Child;
  const launch = () =>
    startChild('redis-server', 'redis-server', {
      args: [
        '--port',
        String(p),
        '--bind',
        ['127.0.0.1', ...(o.alsoBind ?? [])].join(' '),
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
        '--daemonize',
        'no',
        // Protected mode refuses every non-loopback client: the stack's gateway address is its own namespace's.
        '--protected-mode',
        o.alsoBind?.length ? 'no' : 'yes',
      ],
      cwd: dir,
      ready: () => pong(p),
      readyTimeoutMs: 10_000,
      port: p,
    });
  try {
    child = await launch();
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    get child() {
      return child;
    },
    port: p,
    url: `redis://127.0.0.1:${p}`,
    async stop() {
      await child.stop();
      rmSync(dir, { recursive: true, force: true });
    },
    async halt({ keepData }) {
      // SHUTDOWN SAVE writes dump.rdb even with saving off; NOSAVE writes nothing.
      await command(p, `SHUTDOWN ${keepData ? 'SAVE' : 'NOSAVE'}`);
      await child.stop();
      if (!keepData) rmSync(join(dir, 'dump.rdb'), { force: true });
    },
    async start() {
      child = await launch();
      // Loaded: without persistence, a later crash (SIGKILL) must not bring back this old copy.
      rmSync(join(dir, 'dump.rdb'), { force: true });
    },
  };
}

/** Sends one inline command and waits for the connection to end or an answer (SHUTDOWN answers nothing). */
function command(port: number, line: string): Promise<void> {
  return new Promise((resolve) => {
    const s = createConnection(port, '127.0.0.1');
    s.setTimeout(10_000, () => s.destroy());
    s.once('error', () => resolve());
    s.once('close', () => resolve());
    s.once('connect', () => s.write(`${line}\r\n`));
    s.on('data', () => s.end());
  });
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
