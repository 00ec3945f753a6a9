import { describe, expect, it } from 'vitest';
import { fullIntraRequest, genericNack, pictureLossIndication, receiverReport } from '../viewers/stream-stats.ts';
import { isRtcp, parseRtcp } from './whep-rtcp.ts';

/** What an egress node reads in its viewers' RTCP, from packets built byte by byte and by the viewer's own builders. */

const VIDEO = 0x1de00002;
const AUDIO = 0xa0d10001;
const VIEWER = 0x0badcafe;

/** A receiver report block about `ssrc` with 10 % loss. */
function block(ssrc: number): Buffer {
  const b = Buffer.alloc(24);
  b.writeUInt32BE(ssrc >>> 0, 0);
  b[4] = 26;
  return b;
}

describe('keyframe requests in viewer RTCP', () => {
  it('reads a PLI written out by hand (RFC 4585 6.3.1: PSFB, FMT 1, length 2)', () => {
    const pli = Buffer.from('81ce00020badcafe1de00002', 'hex');
    expect(isRtcp(pli)).toBe(true);
    expect(parseRtcp(pli)).toEqual({ reports: [], nacked: 0, keyframes: [{ reason: 'pli', ssrc: VIDEO }] });
    expect(pictureLossIndication(VIEWER, VIDEO)).toEqual(pli);
  });

  it('reads each entry of a FIR (RFC 5104 4.3.1: FMT 4, the SSRC in each FCI, media source 0)', () => {
    const fir = Buffer.from('84ce00060badcafe000000001de0000207000000a0d1000108000000', 'hex');
    expect(parseRtcp(fir).keyframes).toEqual([
      { reason: 'fir', ssrc: VIDEO },
      { reason: 'fir', ssrc: AUDIO },
    ]);
    expect(parseRtcp(fullIntraRequest(VIEWER, VIDEO, 7)).keyframes).toEqual([{ reason: 'fir', ssrc: VIDEO }]);
  });

  it('reads a PLI compounded after a receiver report, as browsers send them', () => {
    const compound = Buffer.concat([receiverReport(VIEWER, block(VIDEO)), pictureLossIndication(VIEWER, VIDEO)]);
    const got = parseRtcp(compound);
    expect(got.reports).toHaveLength(1);
    expect(got.reports[0]!.ssrc).toBe(VIDEO);
    expect(got.keyframes).toEqual([{ reason: 'pli', ssrc: VIDEO }]);
  });

  it('takes other feedback for what it is: a NACK, REMB (PSFB FMT 15) and SLI (FMT 2) ask for no keyframe', () => {
    const nack = genericNack(VIEWER, VIDEO, [10, 12]);
    const remb = Buffer.from('8fce00050badcafe0000000052454d42010a8b4f1de00002', 'hex');
    const sli = Buffer.from('82ce00030badcafe1de0000200000041', 'hex');
    const got = parseRtcp(Buffer.concat([nack, remb, sli]));
    expect(got.nacked).toBe(2);
    expect(got.keyframes).toEqual([]);
  });

  it('stops at a malformed part: a truncated PLI, a length past the end, a bad version', () => {
    const pli = pictureLossIndication(VIEWER, VIDEO);
    expect(parseRtcp(pli.subarray(0, 8)).keyframes).toEqual([]);
    const long = Buffer.from(pli);
    long.writeUInt16BE(9, 2); // says 40 bytes, has 12
    expect(parseRtcp(long).keyframes).toEqual([]);
    const v1 = Buffer.from(pli);
    v1[0] = 0x41;
    expect(parseRtcp(v1).keyframes).toEqual([]);
    // A PLI after a broken part is not reached; one before it is kept.
    expect(parseRtcp(Buffer.concat([pli, long])).keyframes).toHaveLength(1);
    expect(parseRtcp(Buffer.concat([long, pli])).keyframes).toHaveLength(0);
    // A FIR whose last entry is cut short keeps the whole ones.
    const fir = fullIntraRequest(VIEWER, VIDEO, 1);
    const cut = Buffer.concat([fir, Buffer.alloc(4)]);
    cut.writeUInt16BE(5, 2); // 24 bytes: one 8-byte entry and 4 bytes that are not one
    expect(parseRtcp(cut).keyframes).toEqual([{ reason: 'fir', ssrc: VIDEO }]);
  });
});
