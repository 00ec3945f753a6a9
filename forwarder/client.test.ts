import { existsSync } from 'node:fs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildForwarder, FORWARDER_BIN, startForwarder, type RunningForwarder } from '../servers/forwarder.ts';
import { waitUntil } from '../process/wait.ts';
import { ForwarderClient, ForwarderError, ForwarderUnavailableError } from './client.ts';

// The client against the real forwarder: no fake server, the failure modes are
// made real (SIGSTOP for a silent forwarder, SIGTERM and a restart for a drop).

const cleanups: Array<() => unknown> = [];
beforeAll(() => {
  if (!existsSync(FORWARDER_BIN)) buildForwarder();
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function forwarder(o: Parameters<typeof startForwarder>[0] = {}): Promise<RunningForwarder> {
  const f = await startForwarder(o);
  cleanups.push(() => {
    f.child.process.kill('SIGCONT');
    return f.child.stop();
  });
  return f;
}
function client(socketPath: string, requestTimeoutMs = 2_000, onReconnect?: () => void): ForwarderClient {
  const c = new ForwarderClient({ socketPath, requestTimeoutMs, minBackoffMs: 20, maxBackoffMs: 200, onReconnect });
  cleanups.push(() => c.close());
  return c;
}

describe('ForwarderClient', () => {
  it('pipelines requests and matches each reply to its request', async () => {
    const f = await forwarder({ mode: 'demux' });
    const c = client(f.socketPath);
    const adds = Array.from({ length: 40 }, (_, i) =>
      c.add({
        id: `egress-${i}`,
        host: '127.0.0.1',
        audioPort: 20000 + i,
        videoPort: 30000 + i,
        audioSsrc: i,
        videoSsrc: 1000 + i,
      }),
    );
    // Its rejection is caught at once: it may settle while the others are awaited.
    const dup = c.add({ id: 'egress-3', host: '127.0.0.1', audioPort: 1, videoPort: 2 }).then(
      () => null,
      (err: unknown) => err,
    );
    const [list, stats] = await Promise.all([c.list(), c.stats(), c.ping(), ...adds]);
    const dupError = await dup;
    expect(dupError).toBeInstanceOf(ForwarderError);
    expect((dupError as Error).message).toMatch('duplicate id');
    expect(list.map((d) => d.id)).toEqual(Array.from({ length: 40 }, (_, i) => `egress-${i}`));
    expect(list[7]).toEqual({
      id: 'egress-7',
      host: '127.0.0.1',
      audioPort: 20007,
      videoPort: 30007,
      audioSsrc: 7,
      videoSsrc: 1007,
    });
    expect(stats).toMatchObject({
      reachable: true,
      mode: 'demux',
      audio: { state: 3, destinations: 40 },
      video: { state: 3, destinations: 40 },
    });
    await Promise.all(list.map((d) => c.remove(d.id)));
    expect(await c.list()).toEqual([]);
  });

  it('refuses bad arguments before anything is sent', async () => {
    const f = await forwarder();
    const c = client(f.socketPath);
    await expect(c.add({ id: 'a b', host: '127.0.0.1', audioPort: 1, videoPort: 2 })).rejects.toThrow(
      /bad destination id/,
    );
    await expect(c.add({ id: 'a', host: '127.0.0.1\nREMOVE x', audioPort: 1, videoPort: 2 })).rejects.toThrow(
      /bad host/,
    );
    await expect(c.add({ id: 'a', host: '127.0.0.1', audioPort: 70000, videoPort: 2 })).rejects.toThrow();
    await expect(c.add({ id: 'a', host: '127.0.0.1', audioPort: 1, videoPort: 2, audioSsrc: 5 })).rejects.toThrow(
      /both SSRCs/,
    );
    await expect(c.request('PING\nPING')).rejects.toThrow(/one line/);
    expect(await c.list()).toEqual([]);
  });

  it('times a request out, and keeps later replies in order once the forwarder answers again', async () => {
    const f = await forwarder();
    const c = client(f.socketPath, 300);
    await c.ping();
    f.child.process.kill('SIGSTOP');
    const started = Date.now();
    const slow = c.add({ id: 'late', host: '127.0.0.1', audioPort: 1000, videoPort: 1001 });
    await expect(slow).rejects.toThrow(/no reply to ADD within 300 ms/);
    expect(Date.now() - started).toBeLessThan(2_000);
    const down = await c.stats();
    expect(down.reachable).toBe(false);
    expect([down.audio.state, down.video.state]).toEqual([0, 0]);
    f.child.process.kill('SIGCONT');
    // The late replies (OK added late, the STATS) are read and dropped; this LIST gets its own.
    const list = await c.list();
    expect(list.map((d) => d.id)).toEqual(['late']);
    expect((await c.stats()).reachable).toBe(true);
  });

  it('reports state 0 for both pipelines when no forwarder listens, without waiting for the timeout', async () => {
    const c = client('/nonexistent/canopy-forwarder.sock', 5_000);
    const started = Date.now();
    const s = await c.stats();
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(s).toMatchObject({ reachable: false, mode: null, audio: { state: 0, packetsOut: 0 }, video: { state: 0 } });
    await expect(c.ping()).rejects.toThrow(ForwarderUnavailableError);
  });

  it('reconnects after the forwarder restarts on the same socket', async () => {
    const f1 = await startForwarder();
    let reconnects = 0;
    const c = client(f1.socketPath, 2_000, () => reconnects++);
    await c.add({ id: 'before', host: 'localhost', audioPort: 1000, videoPort: 1001 });
    expect((await c.list())[0]?.host).toMatch(/^(127\.0\.0\.1|::1)$/); // the client resolved the name
    await f1.child.stop();
    expect((await c.stats()).reachable).toBe(false);
    const f2 = await forwarder({ socketPath: f1.socketPath });
    await waitUntil('the client to reconnect', async () => (await c.stats()).reachable, {
      timeoutMs: 5_000,
      intervalMs: 50,
    });
    expect(await c.list()).toEqual([]); // a new process: the relay re-adds its children
    expect(reconnects).toBe(1);
    await c.add({ id: 'after', host: '::1', audioPort: 1000, videoPort: 1001 });
    expect((await c.list())[0]).toMatchObject({ id: 'after', host: '::1' });
    expect(f2.socketPath).toBe(f1.socketPath);
  });

  it('fails requests in flight when the connection drops, and close() stops it', async () => {
    const f = await forwarder();
    const c = client(f.socketPath);
    await c.ping();
    f.child.process.kill('SIGSTOP');
    const pending = c.ping();
    f.child.process.kill('SIGKILL');
    await expect(pending).rejects.toThrow(ForwarderUnavailableError);
    c.close();
    await expect(c.ping()).rejects.toThrow(/client is closed/);
  });
});
