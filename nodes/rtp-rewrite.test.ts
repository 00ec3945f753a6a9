import { describe, expect, it } from 'vitest';
import { rtpPacket } from '../test/rtp.ts';
import { RtpRewriter } from './rtp-rewrite.ts';

/** A packet of `ssrc` with sequence number `seq` and timestamp `ts`, payload type 100. */
function pkt(ssrc: number, seq: number, ts: number): Buffer {
  const b = rtpPacket(ssrc, seq, 40, 100);
  b.writeUInt32BE(ts >>> 0, 4);
  return b;
}
const head = (b: Buffer) => ({
  pt: b[1]! & 0x7f,
  seq: b.readUInt16BE(2),
  ts: b.readUInt32BE(4),
  ssrc: b.readUInt32BE(8),
});

describe('RtpRewriter', () => {
  it("writes the session's SSRC and payload type, keeps the marker and payload, never touches the input", () => {
    const w = new RtpRewriter(0xdeadbeef, 96, 90_000);
    const inp = pkt(5, 10, 1000);
    inp[1] = 0x80 | 100;
    const out = w.rewrite(inp, 0);
    expect(head(out)).toEqual({ pt: 96, seq: 10, ts: 1000, ssrc: 0xdeadbeef });
    expect(out[1]! & 0x80).toBe(0x80);
    expect(out.subarray(12)).toEqual(inp.subarray(12));
    expect(head(inp).ssrc).toBe(5);
  });

  it("continues a new publisher's numbering from the last packet sent, across the 16- and 32-bit wraps", () => {
    const w = new RtpRewriter(1, 96, 90_000);
    w.rewrite(pkt(5, 65534, 0xffff_ff00), 0);
    w.rewrite(pkt(5, 65535, 0xffff_ff00), 10);
    // Another publisher 2 s later, numbering of its own.
    w.rebase();
    const a = head(w.rewrite(pkt(6, 1234, 777), 2_010));
    expect(a.seq).toBe(0);
    expect(a.ts).toBe((0xffff_ff00 + 2 * 90_000) >>> 0);
    const b = head(w.rewrite(pkt(6, 1235, 777 + 3000), 2_043));
    expect(b.seq).toBe(1);
    expect(b.ts).toBe((a.ts + 3000) >>> 0);
  });

  it('rebases on a new SSRC even without being told, and not on a reordered packet', () => {
    const w = new RtpRewriter(1, 111, 48_000);
    w.rewrite(pkt(5, 100, 0), 0);
    w.rewrite(pkt(5, 102, 1920), 40);
    expect(head(w.rewrite(pkt(5, 101, 960), 41)).seq).toBe(101); // late, kept as it was
    expect(head(w.rewrite(pkt(9, 7, 5), 60)).seq).toBe(103); // follows 102, the highest sent
  });
});
