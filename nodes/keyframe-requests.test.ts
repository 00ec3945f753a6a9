import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { KeyframeThrottle } from './keyframe-requests.ts';

/** The per-session rate limit of keyframe requests, on a fake clock. */

describe('keyframe request throttle', () => {
  let sent: Array<{ key: string; what: string; at: number }>;
  let limited: number;
  const throttle = (intervalMs: number) =>
    new KeyframeThrottle<string>({
      intervalMs,
      send: (key, what) => sent.push({ key, what, at: Date.now() }),
      onRateLimited: () => limited++,
      now: () => Date.now(),
    });

  beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
    sent = [];
    limited = 0;
  });
  afterEach(() => vi.useRealTimers());

  it('passes the first at once and folds a burst into one sent when the interval ends', () => {
    const t = throttle(500);
    expect(t.request('s1', 'pli')).toBe(true);
    expect(sent).toEqual([{ key: 's1', what: 'pli', at: 0 }]);
    vi.advanceTimersByTime(100);
    for (let i = 0; i < 20; i++) expect(t.request('s1', i === 19 ? 'fir' : 'pli')).toBe(false);
    expect(limited).toBe(20);
    vi.advanceTimersByTime(399);
    expect(sent).toHaveLength(1);
    vi.advanceTimersByTime(1);
    // The latest held request, at the interval's end.
    expect(sent).toEqual([
      { key: 's1', what: 'pli', at: 0 },
      { key: 's1', what: 'fir', at: 500 },
    ]);
    // Nothing more held: the next interval passes nothing by itself.
    vi.advanceTimersByTime(5_000);
    expect(sent).toHaveLength(2);
  });

  it('counts the interval from the last request sent, held ones included', () => {
    const t = throttle(500);
    t.request('s1', 'a');
    t.request('s1', 'b'); // held, sent at 500
    vi.advanceTimersByTime(700);
    expect(t.request('s1', 'c')).toBe(false); // 200 ms after b went
    vi.advanceTimersByTime(300);
    expect(sent.map((s) => [s.what, s.at])).toEqual([
      ['a', 0],
      ['b', 500],
      ['c', 1_000],
    ]);
    vi.advanceTimersByTime(600);
    expect(t.request('s1', 'd')).toBe(true);
    expect(sent.at(-1)).toEqual({ key: 's1', what: 'd', at: 1_600 });
  });

  it('limits each session on its own', () => {
    const t = throttle(1_000);
    expect(t.request('s1', 'x')).toBe(true);
    expect(t.request('s2', 'x')).toBe(true);
    expect(t.request('s1', 'x')).toBe(false);
    expect(sent.map((s) => s.key)).toEqual(['s1', 's2']);
    expect(limited).toBe(1);
  });

  it('sends nothing held for a session forgotten (ended), and forgets all on close', () => {
    const t = throttle(500);
    t.request('s1', 'x');
    t.request('s1', 'y');
    t.request('s2', 'x');
    t.request('s2', 'y');
    t.forget('s1');
    expect(t.size).toBe(1);
    vi.advanceTimersByTime(500);
    expect(sent.map((s) => `${s.key}:${s.what}`)).toEqual(['s1:x', 's2:x', 's2:y']);
    t.request('s2', 'z');
    t.close();
    vi.advanceTimersByTime(1_000);
    expect(sent).toHaveLength(3);
    expect(t.size).toBe(0);
    // A forgotten session starts afresh.
    expect(t.request('s1', 'again')).toBe(true);
  });

  it('with interval 0 passes every request', () => {
    const t = throttle(0);
    for (let i = 0; i < 5; i++) expect(t.request('s1', String(i))).toBe(true);
    expect(sent).toHaveLength(5);
    expect(limited).toBe(0);
  });
});
