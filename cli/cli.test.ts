import { describe, expect, it } from 'vitest';
import { runCanopy } from '../test/canopy.ts';

describe('canopy CLI', () => {
  it('lists its subcommands in --help', async () => {
    const r = await runCanopy(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\s+bench\b/m);
  });

  it.each([
    [['bench', 'exporter', '--sessions', 'abc'], /--sessions.*expected a whole number, got "abc"/],
    [['bench', 'exporter', '--scrapes', '0'], /--scrapes.*expected 5\.\.100000, got 0/],
    [['bench', 'nope'], /unknown command 'nope'/],
    [['bench', 'forwarder', '--destinations', '0'], /--destinations.*expected 1\.\.128, got 0/],
    [['bench', 'actuator', '--duplicates-percent', '101'], /--duplicates-percent.*expected 0\.\.100, got 101/],
  ])('refuses %j with a clear message and a non-zero exit', async (args, message) => {
    const r = await runCanopy(args);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).not.toMatch(/RATIO/);
  });
});
