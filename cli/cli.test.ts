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
    [
      ['bench', 'egress', '--viewers', '50,,200'],
      /--viewers.*expected viewer counts 1\.\.1000, comma-separated, got "50,,200"/,
    ],
    [['bench', 'egress', '--viewers', '0'], /--viewers.*expected viewer counts 1\.\.1000/],
    [['bench', 'egress', '--seconds', '0'], /--seconds.*expected 1\.\.3600, got 0/],
    // The actuator's per-node network: both flags, and a stack namespace with its /24.
    [['actuator', '--token-file', '/dev/null', '--netns', 'canopy-1'], /--netns and --netns-subnet go together/],
    [
      ['actuator', '--token-file', '/dev/null', '--netns', 'eth0', '--netns-subnet', '198.18.1'],
      /--netns: expected a stack namespace canopy-<pid>/,
    ],
    [
      ['actuator', '--token-file', '/dev/null', '--netns', 'canopy-1', '--netns-subnet', '10.0.0'],
      /--netns-subnet: expected the first three octets/,
    ],
  ])('refuses %j with a clear message and a non-zero exit', async (args, message) => {
    const r = await runCanopy(args);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).not.toMatch(/RATIO/);
  });
});
