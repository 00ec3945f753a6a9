import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildForwarder, FORWARDER_BIN, startForwarder, type RunningForwarder } from '../servers/forwarder.ts';
import { freePort } from '../process/ports.ts';
import { waitUntil } from '../process/wait.ts';
import { LineSession, Receiver, rtpPacket, Sender } from '../test/rtp.ts';

// The real binary on loopback: real RTP in, real datagrams counted at each destination.

const AUDIO = 160;
const VIDEO = 1200;
const cleanups: Array<() => unknown> = [];

beforeAll(() => {
  if (!existsSync(FORWARDER_BIN)) buildForwarder();
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function forwarder(mode: 'fanout' | 'demux' = 'fanout'): Promise<RunningForwarder> {
  const f = await startForwarder({ mode });
  cleanups.push(() => f.child.stop());
  return f;
}
async function session(f: RunningForwarder): Promise<LineSession> {
  const s = await LineSession.open(f.socketPath);
  cleanups.push(() => s.close());
  return s;
}
async function receivers(n: number): Promise<Receiver[]> {
  const rs = await Promise.all(Array.from({ length: n }, () => Receiver.open()));
  cleanups.push(() => {
    for (const r of rs) r.close();
  });
  return rs;
}
function senders(f: RunningForwarder): { audio: Sender; video: Sender } {
  const s = { audio: new Sender(f.audioPort), video: new Sender(f.videoPort) };
  cleanups.push(() => {
    s.audio.close();
    s.video.close();
  });
  return s;
}
async function stats(s: LineSession): Promise<any> {
  return JSON.parse(await s.cmd('STATS'));
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('media-tree-forwarder command line', () => {
  const run = (args: string[]) => spawnSync(FORWARDER_BIN, args, { encoding: 'utf8', timeout: 5_000 });

  it('prints --help and exits 0', () => {
    const r = run(['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/--control PATH/);
    expect(r.stdout).toMatch(/--mode MODE/);
  });

  it.each([
    [['--bogus'], /unknown or incomplete option --bogus/],
    [['--control', '/tmp/x.sock', '--audio-port', '0', '--video-port', '5004'], /--audio-port expects 1\.\.65535/],
    [['--control', '/tmp/x.sock', '--audio-port', '5002', '--video-port', 'abc'], /--video-port expects 1\.\.65535/],
    [
      ['--control', '/tmp/x.sock', '--audio-port', '5002', '--video-port', '5004', '--mode', 'mesh'],
      /--mode expects fanout or demux/,
    ],
    [['--audio-port', '5002', '--video-port', '5004'], /--control is required/],
    [['--control', '/tmp/x.sock', '--audio-port', '5002'], /--audio-port and --video-port are required/],
    [['--control', '/tmp/x.sock', '--audio-port', '5002', '--video-port', '5002'], /must differ/],
    [
      ['--control', '/tmp/x.sock', '--audio-port', '5002', '--video-port', '5004', '--bind', 'nowhere'],
      /--bind expects/,
    ],
  ])('refuses %j with exit code 2', (args, message) => {
    const r = run(args);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('refuses to replace a file that is not a socket, and a UDP port in use', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'canopy-fwd-'));
    const file = join(dir, 'not-a-socket');
    writeFileSync(file, 'keep me');
    const [a, v] = [await freePort(), await freePort()];
    const r = run(['--control', file, '--audio-port', String(a), '--video-port', String(v)]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/exists and is not a socket/);

    const f = await forwarder();
    const r2 = run(['--control', join(dir, 'b.sock'), '--audio-port', String(f.audioPort), '--video-port', String(v)]);
    expect(r2.status).toBe(1);
    expect(r2.stderr).toMatch(/cannot listen for audio/);
  });
});

describe('fan-out', () => {
  it('sends every packet to every destination and counts exactly what it sent', async () => {
    const f = await forwarder('fanout');
    const s = await session(f);
    const rx = await receivers(6);
    for (let d = 0; d < 3; d++)
      expect(await s.cmd(`ADD relay-${d} 127.0.0.1 ${rx[2 * d]!.port} ${rx[2 * d + 1]!.port}`)).toBe(
        `OK added relay-${d}`,
      );
    const tx = senders(f);
    for (let i = 0; i < 50; i++) {
      await tx.audio.send(rtpPacket(1111, i, AUDIO, 111));
      await tx.video.send(rtpPacket(2222, i, VIDEO));
    }
    await waitUntil('every destination to get 50 + 50 packets', () => rx.every((r) => r.count() === 50), {
      timeoutMs: 5_000,
      intervalMs: 20,
    });
    for (let d = 0; d < 3; d++) {
      expect(rx[2 * d]!.packets.map((p) => p.seq)).toEqual([...Array(50).keys()]);
      expect(rx[2 * d]!.packets.every((p) => p.ssrc === 1111 && p.size === AUDIO)).toBe(true);
      expect(rx[2 * d + 1]!.packets.every((p) => p.ssrc === 2222 && p.size === VIDEO)).toBe(true);
    }
    const st = await stats(s);
    expect(st.mode).toBe('fanout');
    expect(st.audio).toEqual({
      state: 3,
      port: f.audioPort,
      packetsIn: 50,
      bytesIn: 50 * AUDIO,
      packetsOut: 150,
      bytesOut: 150 * AUDIO,
      destinations: 3,
      ssrcs: 0,
    });
    expect(st.video).toEqual({
      state: 3,
      port: f.videoPort,
      packetsIn: 50,
      bytesIn: 50 * VIDEO,
      packetsOut: 150,
      bytesOut: 150 * VIDEO,
      destinations: 3,
      ssrcs: 0,
    });
    await sleep(100);
    expect(rx.every((r) => r.count() === 50)).toBe(true); // and nothing more
  });

  it('adds and removes destinations while packets flow; nothing reaches a destination after its REMOVE is OK', async () => {
    const f = await forwarder('fanout');
    const s = await session(f);
    const [keepA, keepV, goA, goV] = await receivers(4);
    expect(await s.cmd(`ADD keep 127.0.0.1 ${keepA!.port} ${keepV!.port}`)).toMatch(/^OK/);
    const tx = senders(f);
    let seq = 0;
    let running = true;
    const pump = (async () => {
      while (running) {
        await tx.audio.send(rtpPacket(1111, seq, AUDIO));
        await tx.video.send(rtpPacket(2222, seq, VIDEO));
        seq++;
        if (seq % 10 === 0) await sleep(1);
      }
    })();
    try {
      await sleep(50);
      expect(await s.cmd(`ADD go 127.0.0.1 ${goA!.port} ${goV!.port}`)).toBe('OK added go');
      await waitUntil('the new destination to receive', () => goA!.count() > 20 && goV!.count() > 20, {
        timeoutMs: 5_000,
        intervalMs: 10,
      });
      // (packets still queued in the forwarder's socket at ADD time may reach it too: that is fine)
      const seqs = goV!.packets.map((p) => p.seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      expect(await s.cmd('REMOVE go')).toBe('OK removed go');
      const lastSentBeforeOk = seq - 1;
      const keptBefore = keepV!.count();
      await sleep(200);
      expect(seq - 1).toBeGreaterThan(lastSentBeforeOk + 20); // packets kept flowing
      expect(keepV!.count()).toBeGreaterThan(keptBefore); // to the destination still there
      for (const r of [goA!, goV!])
        expect(Math.max(...r.packets.map((p) => p.seq))).toBeLessThanOrEqual(lastSentBeforeOk);
    } finally {
      running = false;
      await pump;
    }
  });
});

describe('SSRC demux', () => {
  it('gives a destination that names SSRCs only those, and one that names none everything', async () => {
    const f = await forwarder('demux');
    const s = await session(f);
    const rx = await receivers(6);
    expect(await s.cmd(`ADD all 127.0.0.1 ${rx[0]!.port} ${rx[1]!.port}`)).toBe('OK added all');
    expect(await s.cmd(`ADD sess-1 127.0.0.1 ${rx[2]!.port} ${rx[3]!.port} 1111 2222`)).toBe('OK added sess-1');
    const tx = senders(f);
    // SSRC 3333/4444 first flows with nobody naming it, then sess-2 asks for it.
    for (let i = 0; i < 20; i++) {
      for (const [ssrc, sz] of [
        [1111, AUDIO],
        [3333, AUDIO],
      ] as const)
        await tx.audio.send(rtpPacket(ssrc, i, sz));
      for (const [ssrc, sz] of [
        [2222, VIDEO],
        [4444, VIDEO],
      ] as const)
        await tx.video.send(rtpPacket(ssrc, i, sz));
    }
    await waitUntil(
      'first round',
      () => rx[0]!.count() === 40 && rx[1]!.count() === 40 && rx[2]!.count() === 20 && rx[3]!.count() === 20,
      { timeoutMs: 5_000, intervalMs: 20 },
    );
    expect(await s.cmd(`ADD sess-2 127.0.0.1 ${rx[4]!.port} ${rx[5]!.port} 3333 4444`)).toBe('OK added sess-2');
    for (let i = 20; i < 40; i++) {
      for (const ssrc of [1111, 3333]) await tx.audio.send(rtpPacket(ssrc, i, AUDIO));
      for (const ssrc of [2222, 4444]) await tx.video.send(rtpPacket(ssrc, i, VIDEO));
    }
    await waitUntil(
      'second round',
      () => rx[0]!.count() === 80 && rx[2]!.count() === 40 && rx[4]!.count() === 20 && rx[5]!.count() === 20,
      { timeoutMs: 5_000, intervalMs: 20 },
    );
    await sleep(100);
    expect([rx[2]!.count(1111), rx[2]!.count(), rx[3]!.count(2222), rx[3]!.count()]).toEqual([40, 40, 40, 40]);
    expect([rx[4]!.count(3333), rx[4]!.count(), rx[5]!.count(4444), rx[5]!.count()]).toEqual([20, 20, 20, 20]);
    expect(rx[1]!.count(2222)).toBe(40);
    expect(rx[1]!.count(4444)).toBe(40);

    const st = await stats(s);
    expect(st.mode).toBe('demux');
    // out: "all" got 80, sess-1 40, sess-2 20 per pipeline
    expect(st.audio).toEqual({
      state: 3,
      port: f.audioPort,
      packetsIn: 80,
      bytesIn: 80 * AUDIO,
      packetsOut: 140,
      bytesOut: 140 * AUDIO,
      destinations: 3,
      ssrcs: 2,
    });
    expect(st.video).toMatchObject({ state: 3, packetsIn: 80, packetsOut: 140, bytesOut: 140 * VIDEO, ssrcs: 2 });
    const list = JSON.parse(await s.cmd('LIST'));
    expect(list.destinations[1]).toEqual({
      id: 'sess-1',
      host: '127.0.0.1',
      audioPort: rx[2]!.port,
      videoPort: rx[3]!.port,
      audioSsrc: 1111,
      videoSsrc: 2222,
    });
    expect(list.destinations[0].audioSsrc).toBeNull();
    expect(await s.cmd('ADD x 127.0.0.1 1 2 1 4294967296')).toBe('ERR bad video SSRC: expected 0..4294967295');

    // Datagrams that are not RTP are dropped by the demuxer; the pipeline keeps going.
    await tx.audio.send(Buffer.from('hello'));
    const v0 = rtpPacket(1111, 99, AUDIO);
    v0[0] = 0x00;
    await tx.audio.send(v0);
    await tx.audio.send(rtpPacket(1111, 100, AUDIO));
    await waitUntil('the next valid packet', () => rx[2]!.count() === 41, { timeoutMs: 5_000, intervalMs: 20 });
    expect(rx[2]!.packets.at(-1)!.seq).toBe(100);
    expect((await stats(s)).audio).toMatchObject({ state: 3, packetsIn: 83 });
    expect(await s.cmd('ADD x 127.0.0.1 1 2 1')).toMatch(/^ERR ADD takes/);
  });
});

describe('control protocol', () => {
  it.each([
    ['FOO', /^ERR unknown command/],
    ['add a 127.0.0.1 1 2', /^ERR unknown command/],
    ['ADD a 127.0.0.1 1', /^ERR ADD takes/],
    ['ADD a 127.0.0.1 1 2 3', /^ERR ADD takes/],
    ['ADD a 127.0.0.1 1 2 3 4 5', /^ERR ADD takes/],
    ['ADD a/b 127.0.0.1 1 2', /^ERR bad id/],
    [`ADD ${'a'.repeat(129)} 127.0.0.1 1 2`, /^ERR bad id/],
    ['ADD a 127.0.0.1 0 2', /^ERR bad audio port/],
    ['ADD a 127.0.0.1 1 65536', /^ERR bad video port/],
    ['ADD a 127.0.0.1 01 2', /^ERR bad audio port/],
    ['ADD a 127.0.0.1 -1 2', /^ERR bad audio port/],
    ['ADD a 999.0.0.1 1 2', /^ERR bad host/],
    ['ADD a example.com 1 2', /^ERR bad host/],
    ['ADD a 0.0.0.0 1 2', /^ERR bad host/],
    ['ADD existing 127.0.0.1 1 2', /^ERR duplicate id/],
    ['ADD a 127.0.0.1 1 2 1111 2222', /^ERR SSRCs need --mode demux/],
    ['REMOVE nobody', /^ERR unknown id/],
    ['REMOVE existing extra', /^ERR REMOVE takes <id>/],
    ['REMOVE', /^ERR REMOVE takes <id>/],
    ['LIST all', /^ERR LIST takes no arguments/],
    ['STATS now', /^ERR STATS takes no arguments/],
    ['', /^ERR empty line/],
    ['ADD a\x01 127.0.0.1 1 2', /^ERR control character/],
    [Buffer.from([0x41, 0x44, 0x44, 0x20, 0xff, 0xfe, 0x20, 0x31]), /^ERR line is not valid UTF-8/],
    [`ADD ${'x'.repeat(5000)} 127.0.0.1 1 2`, /^ERR line longer than 1024 bytes/],
  ])('answers %# with ERR and changes nothing', async (line, reply) => {
    const f = await forwarder('fanout');
    const s = await session(f);
    expect(await s.cmd('ADD existing 127.0.0.1 40000 40001')).toBe('OK added existing');
    const before = await s.cmd('LIST');
    expect(await s.cmd(line)).toMatch(reply);
    expect(await s.cmd('PING')).toBe('OK pong'); // the session goes on
    expect(await s.cmd('LIST')).toBe(before);
  });

  it('serves several clients at once, each with pipelined commands answered in order', async () => {
    const f = await forwarder('fanout');
    const clients = await Promise.all(Array.from({ length: 12 }, () => session(f)));
    const replies = await Promise.all(
      clients.map(async (c, i) => {
        c.write(`PING\nADD c-${i} 127.0.0.1 ${41000 + i} ${42000 + i}\nADD c-${i} 127.0.0.1 1 2\nPING\n`);
        return [await c.next(), await c.next(), await c.next(), await c.next()];
      }),
    );
    for (const [i, r] of replies.entries())
      expect(r).toEqual(['OK pong', `OK added c-${i}`, 'ERR duplicate id', 'OK pong']);
    const list = JSON.parse(await clients[0]!.cmd('LIST'));
    expect(list.destinations.map((d: { id: string }) => d.id).sort()).toEqual(clients.map((_, i) => `c-${i}`).sort());
    await Promise.all(clients.map(async (c, i) => expect(await c.cmd(`REMOVE c-${i}`)).toBe(`OK removed c-${i}`)));
    expect(JSON.parse(await clients[0]!.cmd('STATS')).audio.destinations).toBe(0);
  });

  it('ignores an unfinished line of a client that disconnects, but runs its complete lines', async () => {
    const f = await forwarder('fanout');
    const quitter = await LineSession.open(f.socketPath);
    quitter.write('ADD whole 127.0.0.1 40000 40001\nADD half 127.0.0.1 40002 40003');
    await quitter.next();
    quitter.close();
    const s = await session(f);
    await sleep(100);
    const ids = JSON.parse(await s.cmd('LIST')).destinations.map((d: { id: string }) => d.id);
    expect(ids).toEqual(['whole']);
  });
});

describe('shutdown', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)(
    'on %s sets the pipelines to NULL, removes the socket and exits 0',
    async (signal) => {
      const f = await startForwarder();
      try {
        const s = await LineSession.open(f.socketPath);
        expect(await s.cmd('PING')).toBe('OK pong');
        const exited = new Promise<number | null>((r) => f.child.process.once('exit', (code) => r(code)));
        f.child.process.kill(signal);
        expect(await exited).toBe(0);
        expect(existsSync(f.socketPath)).toBe(false);
        expect(f.child.output()).toMatch(/stopped/);
        s.close();
      } finally {
        await f.child.stop();
      }
    },
  );
});

describe('--die-with-parent', () => {
  it('exits when the process that started it is SIGKILLed, freeing its ports and socket', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'canopy-fwd-'));
    const sock = join(dir, 'control.sock');
    const [a, v] = [await freePort(), await freePort()];
    // sh is the parent; it prints the forwarder's pid and waits.
    const { spawn } = await import('node:child_process');
    const sh = spawn(
      'sh',
      [
        '-c',
        `"$0" --control "$1" --audio-port $2 --video-port $3 --die-with-parent & echo $!; wait`,
        FORWARDER_BIN,
        sock,
        String(a),
        String(v),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const pid = Number(
      await new Promise<string>((resolve) => sh.stdout!.once('data', (c: Buffer) => resolve(c.toString().trim()))),
    );
    const alive = () => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    await waitUntil('the forwarder to listen', () => existsSync(sock), { timeoutMs: 5_000 });
    expect(alive()).toBe(true);
    sh.kill('SIGKILL');
    await waitUntil('the orphaned forwarder to exit', () => !alive(), { timeoutMs: 5_000 });
    // It went the SIGTERM way: the control socket is gone.
    await waitUntil('its socket to be unlinked', () => !existsSync(sock), { timeoutMs: 2_000 });
  });
});
