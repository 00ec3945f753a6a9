import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildForwarder } from '../servers/forwarder.ts';

// rtp-quality.c (the forwarder's RFC 3550 receive statistics) fed crafted sequences
// through its driver binary, held against the RFC's definitions.

const CHECK_BIN = join(fileURLToPath(new URL('.', import.meta.url)), 'build', 'rtp-quality-check');
const VIDEO_HZ = 90_000;
const FRAME_US = 20_000; // 20 ms apart: 1,800 ticks at 90 kHz, exact, so steady arrivals have zero jitter

interface Packet {
  ssrc?: number;
  seq: number;
  /** RTP timestamp; by default the sequence number's own slot. */
  ts?: number;
  /** Arrival in microseconds; by default the slot's time. */
  at?: number;
}
interface Measured {
  ssrc: number;
  expected: number;
  received: number;
  lost: number;
  outOfOrder: number;
  duplicates: number;
  jitter: number;
}

beforeAll(() => {
  if (!existsSync(CHECK_BIN)) buildForwarder();
});

function measure(packets: Packet[], hz = VIDEO_HZ): Measured[] {
  const input = packets
    .map((p, i) => {
      const slot = p.ts === undefined ? i : p.ts;
      const ts = (slot * (hz / 50)) >>> 0;
      return `${p.ssrc ?? 7} ${p.seq & 0xffff} ${ts} ${p.at ?? i * FRAME_US}`;
    })
    .join('\n');
  const r = spawnSync(CHECK_BIN, [String(hz)], { input, encoding: 'utf8', timeout: 5_000 });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Measured);
}
const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);
const inOrder = (seqs: number[]): Packet[] => seqs.map((seq) => ({ seq }));

describe('RFC 3550 A.1/A.3: expected and lost', () => {
  it('counts a burst of loss: expected from the first valid packet to the highest, lost = expected - received', () => {
    // Probation (A.1, MIN_SEQUENTIAL = 2): the first packet only validates the source, so the count starts at seq 1.
    const seqs = range(0, 200).filter((s) => s < 50 || s >= 60);
    const [m] = measure(inOrder(seqs));
    expect(m).toMatchObject({ expected: 199, received: 189, lost: 10, outOfOrder: 0, duplicates: 0 });
  });

  it('counts reordered packets as received and out of order, not as lost', () => {
    const seqs = range(0, 100);
    [seqs[10], seqs[11]] = [seqs[11]!, seqs[10]!];
    [seqs[50], seqs[53]] = [seqs[53]!, seqs[50]!];
    // 11, 10 (10 late); 53, 51, 52, 50 (51, 52 and 50 late, each behind the highest seen).
    const [m] = measure(inOrder(seqs));
    expect(m).toMatchObject({ expected: 99, received: 99, lost: 0, outOfOrder: 4, duplicates: 0 });
  });

  it('counts a late packet that fills a gap: first a loss, then none', () => {
    const before = range(0, 30).filter((s) => s !== 20);
    expect(measure(inOrder(before))[0]).toMatchObject({ expected: 29, lost: 1 });
    const [m] = measure([...inOrder(before), { seq: 20 }, ...inOrder(range(30, 5))]);
    expect(m).toMatchObject({ expected: 34, received: 34, lost: 0, outOfOrder: 1 });
  });

  it('does not let duplicates hide a loss (received counts distinct packets)', () => {
    const seqs = range(0, 100).filter((s) => s !== 70 && s !== 71);
    const packets = inOrder(seqs);
    packets.splice(41, 0, { seq: 40 }, { seq: 40 }); // the same packet twice more
    packets.push({ seq: 99 }); // the newest again
    const [m] = measure(packets);
    expect(m).toMatchObject({ expected: 99, received: 97, lost: 2, duplicates: 3, outOfOrder: 0 });
  });

  it('extends the sequence number across the wrap at 65535', () => {
    const seqs = range(65_500, 100).map((s) => s % 65_536); // 65500..65535, 0..63
    const clean = measure(inOrder(seqs))[0]!;
    expect(clean).toMatchObject({ expected: 99, received: 99, lost: 0 });
    const lossy = measure(inOrder(seqs.filter((s) => s !== 65_535 && s !== 0 && s !== 1)))[0]!;
    expect(lossy).toMatchObject({ expected: 99, received: 96, lost: 3 });
    // A late packet from before the wrap arriving after it is reordering, not a jump.
    const late = seqs.filter((s) => s !== 65_534);
    const packets = inOrder(late);
    packets.splice(40, 0, { seq: 65_534 });
    expect(measure(packets)[0]).toMatchObject({ expected: 99, received: 99, lost: 0, outOfOrder: 1 });
  });

  it('keeps each SSRC apart, a new one starting its own count', () => {
    const a = range(0, 60).map((seq) => ({ ssrc: 1, seq }));
    const b = range(1_000, 40)
      .filter((s) => s % 10 !== 5)
      .map((seq) => ({ ssrc: 2, seq }));
    const mixed: Packet[] = [];
    for (let i = 0; i < 60; i++) {
      mixed.push(a[i]!);
      if (b[i]) mixed.push(b[i]!);
    }
    const [m1, m2] = measure(mixed.map((p, i) => ({ ...p, ts: i, at: i * FRAME_US })));
    expect(m1).toMatchObject({ ssrc: 1, expected: 59, lost: 0 });
    expect(m2).toMatchObject({ ssrc: 2, expected: 39, received: 35, lost: 4 });
  });

  it('re-bases a restarted sender (a jump confirmed by the next packet) and keeps the totals', () => {
    const [m] = measure(inOrder([...range(0, 50), ...range(30_000, 50)]));
    // 49 of the first sequence; the new one starts at its second packet (A.1: bad_seq confirmed).
    expect(m).toMatchObject({ expected: 98, received: 98, lost: 0 });
  });
});

describe('RFC 3550 A.8: interarrival jitter', () => {
  it('is zero for packets that arrive exactly as their timestamps say', () => {
    expect(measure(inOrder(range(0, 50)))[0]!.jitter).toBe(0);
  });

  it('follows J += (|D| - J) / 16, in seconds of the payload clock (video 90 kHz, Opus 48 kHz)', () => {
    for (const hz of [90_000, 48_000]) {
      const delayUs = 4_000; // every other packet 4 ms late: |D| = 4 ms at each step
      const packets = range(0, 40).map((seq, i) => ({ seq, at: i * FRAME_US + (i % 2) * delayUs }));
      let j = 0;
      // The first packet validates the source; D exists from the third on.
      for (let i = 2; i < 40; i++) j += (delayUs / 1e6 - j) / 16;
      expect(measure(packets, hz)[0]!.jitter).toBeCloseTo(j, 6);
    }
  });

  it('grows with a queue that builds and drains (arrival spread, same timestamps)', () => {
    const steady = measure(inOrder(range(0, 100)))[0]!.jitter;
    const queued = measure(range(0, 100).map((seq, i) => ({ seq, at: i * FRAME_US + (i % 20) * 3_000 })))[0]!.jitter;
    expect(steady).toBe(0);
    expect(queued).toBeGreaterThan(0.002);
  });
});
