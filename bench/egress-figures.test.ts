import { describe, expect, it } from 'vitest';
import { cpuPerViewerMinute, delivery } from './egress-figures.ts';

describe('the egress bench figures', () => {
  it('divides CPU by viewers and minutes of the window', () => {
    expect(cpuPerViewerMinute(20, 200, 60_000)).toBeCloseTo(0.1);
    expect(cpuPerViewerMinute(10, 50, 30_000)).toBeCloseTo(0.4);
    expect(() => cpuPerViewerMinute(1, 0, 60_000)).toThrow(/no viewers/);
    expect(() => cpuPerViewerMinute(1, 10, 0)).toThrow(/no window/);
    expect(() => cpuPerViewerMinute(-1, 10, 1000)).toThrow(/>= 0/);
  });

  it('gives each viewer its share of what was sent in the window, and counts those below 99.9 %', () => {
    const sent = { before: { audio: 100, video: 1000 }, after: { audio: 3100, video: 7000 } };
    const d = delivery(sent, [
      { before: { audio: 0, video: 0 }, after: { audio: 3000, video: 6000 } }, // everything
      { before: { audio: 10, video: 10 }, after: { audio: 3008, video: 6004 } }, // 2 audio, 6 video short: 99.93 %, 99.9 %
      { before: { audio: 5, video: 5 }, after: { audio: 3005, video: 5000 } }, // video 83 %
    ]);
    expect(d.viewers).toBe(3);
    expect(d.below).toBe(1);
    expect(d.min.audio).toBeCloseTo(2998 / 3000, 6);
    expect(d.min.video).toBeCloseTo(4995 / 6000, 6);
    expect(d.min.both).toBeCloseTo((3000 + 4995) / 9000, 6);
    expect(() => delivery({ before: sent.before, after: { audio: 100, video: 2000 } }, [])).toThrow(/no audio packets/);
  });
});
