import { createServer, type Server, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { startChild } from './child.ts';
import { freePort, listensOn, onFreePort, portTaken } from './ports.ts';
import { httpOk } from './wait.ts';

// A bare HTTP answerer standing for "another process" on the port.
const sockets = new Set<Socket>();
const listen = (port: number): Promise<Server> =>
  new Promise((resolve, reject) => {
    const s = createServer((c) => {
      sockets.add(c);
      c.once('close', () => sockets.delete(c));
      c.end('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n');
    });
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
const close = (s: Server) =>
  new Promise<void>((r) => {
    for (const c of sockets) c.destroy();
    s.close(() => r());
  });

describe('ports', () => {
  it('tells who holds a listening port', async () => {
    const port = await freePort();
    expect(portTaken(port)).toBe(false);
    const s = await listen(port);
    try {
      expect(portTaken(port)).toBe(true);
      expect(listensOn(process.pid, port)).toBe(true);
      expect(listensOn(process.ppid, port)).toBe(false);
    } finally {
      await close(s);
    }
    expect(listensOn(process.pid, port)).toBe(false);
  });

  it('onFreePort starts again on another port when someone took the first', async () => {
    const tried: number[] = [];
    let squatter: Server | undefined;
    try {
      const got = await onFreePort(async (port) => {
        tried.push(port);
        if (tried.length === 1) {
          squatter = await listen(port);
          throw new Error('address already in use');
        }
        return port;
      });
      expect(tried).toHaveLength(2);
      expect(got).toBe(tried[1]);
      expect(got).not.toBe(tried[0]);
    } finally {
      if (squatter) await close(squatter);
    }
  });

  it('onFreePort does not retry a failure that is not about the port', async () => {
    let calls = 0;
    await expect(
      onFreePort(async () => {
        calls++;
        throw new Error('bad config');
      }),
    ).rejects.toThrow('bad config');
    expect(calls).toBe(1);
  });

  it("a child is not ready on another process's answer from its port", async () => {
    const port = await freePort();
    const s = await listen(port);
    try {
      const start = startChild('sleeper', 'sleep', {
        args: ['30'],
        ready: () => httpOk(`http://127.0.0.1:${port}/`),
        readyTimeoutMs: 1_500,
        port,
      });
      await expect(start).rejects.toThrow(/timed out .* sleeper to become ready/);
    } finally {
      await close(s);
    }
  });

  it('a child that exits before it is ready fails at once, not at its timeout', async () => {
    const started = Date.now();
    await expect(
      startChild('quitter', 'sh', {
        args: ['-c', 'echo bind failed >&2; exit 3'],
        ready: () => false,
        readyTimeoutMs: 30_000,
      }),
    ).rejects.toThrow(/quitter exited with code 3[\s\S]*bind failed/);
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
