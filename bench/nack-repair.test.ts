import { describe, expect, it } from 'vitest';
import { netnsAllowed } from '../process/netns.ts';
import { runCanopy } from '../test/canopy.ts';

// A smoke run, one viewer per group for a few seconds: proves the benchmark
// impairs the egress's outgoing link, reads both groups and the rule's
// counter, and ends with a finite RATIO. The figures are judged by the full
// run, never here.
describe.skipIf(!netnsAllowed())('canopy bench nack-repair (small)', () => {
  it('prints each group loss per stream, the drop count and a RATIO', async () => {
    const r = await runCanopy(['bench', 'nack-repair', '--viewers', '1', '--seconds', '5'], 55_000);
    expect(r.code, r.stderr).toBe(0);
    const dropped = Number(/^the rule dropped (\d+) packets/m.exec(r.stdout)?.[1]);
    expect(dropped).toBeGreaterThan(0);
    for (const g of ['nack', 'plain'])
      for (const s of ['audio', 'video'])
        expect(r.stdout).toMatch(
          new RegExp(`^${g} ${s}: \\d+ lost of [1-9]\\d* expected \\(\\d+\\.\\d+ %\\), \\d+ NACKs sent`, 'm'),
        );
    expect(r.stdout).toMatch(/^plain video: \d+ lost of \d+ expected \(\d+\.\d+ %\), 0 NACKs sent/m);
    expect(r.stdout).toMatch(/^nack video: \d+ lost of \d+ expected \(\d+\.\d+ %\), [1-9]\d* NACKs sent/m);
    expect(r.stdout.trim().split('\n').at(-1)).toMatch(/^RATIO \d+\.\d+$/);
  }, 60_000);
});
