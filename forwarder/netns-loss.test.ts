import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startChild, type Child } from '../process/child.ts';
import { waitUntil } from '../process/wait.ts';
import { accepts, buildForwarder, FORWARDER_BIN } from '../servers/forwarder.ts';
import { LineSession } from '../test/rtp.ts';

// Real loss, measured twice: nftables drops 5 % of the forwarder's incoming UDP
// inside a network namespace of our own, and counts what it dropped; the
// forwarder's RFC 3550 statistics must find the same packets missing.

// The sender the forwarder bench builds (bench/Makefile, run by scripts/setup.sh); a path, not an import.
const RTP_BLAST_BIN = fileURLToPath(new URL('../bench/build/rtp-blast', import.meta.url));

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const canNetns = process.getuid?.() === 0 && has('ip') && has('nft');
const ns = `canopy-t${process.pid}`;
const AUDIO = 5002;
const VIDEO = 5004;
const inNs = (args: string[], input?: string) =>
  execFileSync('ip', ['netns', 'exec', ns, ...args], { input, encoding: 'utf8', timeout: 30_000 });

describe.skipIf(!canNetns)('RTP loss from an nftables drop in a private network namespace', () => {
  let fwd: Child | undefined;
  let control: LineSession | undefined;

  beforeAll(async () => {
    if (!existsSync(FORWARDER_BIN)) buildForwarder();
    if (!existsSync(RTP_BLAST_BIN))
      execFileSync('make', ['-s', '-C', fileURLToPath(new URL('../bench/', import.meta.url))]);
    execFileSync('ip', ['netns', 'add', ns]);
    inNs(['ip', 'link', 'set', 'lo', 'up']);
    inNs(
      ['nft', '-f', '-'],
      `table inet canopy {
        chain input {
          type filter hook input priority 0;
          meta l4proto udp udp dport { ${AUDIO}, ${VIDEO} } numgen random mod 100 < 5 counter drop
        }
      }\n`,
    );
    const socketPath = join(mkdtempSync(join(tmpdir(), 'canopy-fwd-')), 'control.sock');
    // A Unix socket is a file: the test reaches the control socket from outside the namespace.
    fwd = await startChild('media-tree-forwarder', 'ip', {
      args: [
        'netns',
        'exec',
        ns,
        FORWARDER_BIN,
        '--control',
        socketPath,
        '--audio-port',
        `${AUDIO}`,
        '--video-port',
        `${VIDEO}`,
      ],
      ready: () => accepts(socketPath),
      readyTimeoutMs: 10_000,
    });
    control = await LineSession.open(socketPath);
  });

  afterAll(async () => {
    control?.close();
    await fwd?.stop();
    spawnSync('ip', ['netns', 'del', ns]);
  });

  it('reports as lost what the drop rule counted, per stream, and nothing else', async () => {
    const out = inNs([RTP_BLAST_BIN, '--receivers', '1'], `RUN ${AUDIO} ${VIDEO} 2000 3000\n`);
    const sent = JSON.parse(out.trim().split('\n').at(-1)!) as { sentAudio: number; sentVideo: number };
    const rule = JSON.parse(inNs(['nft', '-j', 'list', 'chain', 'inet', 'canopy', 'input'])).nftables.find(
      (x: any) => x.rule,
    ).rule;
    const dropped: number = rule.expr.find((e: any) => e.counter).counter.packets;
    const total = sent.sentAudio + sent.sentVideo;
    // rtp-blast is done sending, not the forwarder with taking in: read STATS once every
    // packet that got past the rule has been counted (a loaded machine lags here)
    const readStats = async () => JSON.parse(await control!.cmd('STATS'));
    await waitUntil(
      'every surviving packet counted in',
      async () => {
        const s = await readStats();
        return s.audio.packetsIn + s.video.packetsIn >= total - dropped;
      },
      { timeoutMs: 5_000, intervalMs: 20 },
    );
    const stats = await readStats();
    const streams = [...stats.audio.streams, ...stats.video.streams];
    expect(streams.map((s: any) => s.ssrc).sort()).toEqual([1111, 2222]);
    const lost = streams.reduce((n: number, s: any) => n + s.lost, 0);
    const expected = streams.reduce((n: number, s: any) => n + s.expected, 0);
    // 5 % of ~6,000 packets; a drop of a stream's first or last packets is not
    // detectable as a gap (RFC 3550 counts from the first valid to the highest seen).
    expect(dropped / total).toBeGreaterThan(0.03);
    expect(dropped / total).toBeLessThan(0.07);
    expect(Math.abs(lost - dropped)).toBeLessThanOrEqual(Math.max(4, dropped * 0.01));
    expect(Math.abs(expected - total)).toBeLessThanOrEqual(4);
    expect(stats.audio.packetsIn + stats.video.packetsIn).toBe(total - dropped);
    for (const s of streams) expect(s.outOfOrder + s.duplicates).toBe(0);
  });
});
