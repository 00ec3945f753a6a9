import { describe, expect, it } from 'vitest';
import { runCanopy } from '../test/canopy.ts';

// A smoke run at tiny rates: proves the benchmark drives both forwarders end to
// end. The rates themselves are judged by the full run, never in tests.
describe('canopy bench forwarder (small)', () => {
  it('measures ours and the gst-launch baseline and ends with a RATIO line', async () => {
    const r = await runCanopy(
      [
        'bench',
        'forwarder',
        '--destinations',
        '2',
        '--step-ms',
        '200',
        '--start-rate',
        '200',
        '--max-rate',
        '400',
        '--bisections',
        '1',
      ],
      60_000,
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.at(-1)).toMatch(/^RATIO \d+\.\d+$/);
    expect(r.stdout).toMatch(/^ours \(media-tree-forwarder fanout\): \d+ pkt\/s in/m);
    expect(r.stdout).toMatch(/^baseline \(gst-launch-1\.0 udpsrc ! multiudpsink\): \d+ pkt\/s in/m);
  });
});
