import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { statCpuSeconds, statFields, treeCpuByName, treeCpuSeconds, udpDrops } from './proc.ts';

describe('/proc CPU accounting', () => {
  it('reads the CPU times of a stat line whose command name holds spaces and parentheses', () => {
    // pid (comm) state ppid ... utime(14) stime(15) cutime(16) cstime(17) ...
    const line = '4242 (gst (x) launch) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 30 20 20 0 5 0 1234 0 0\n';
    const f = statFields(line);
    expect(f[0]).toBe('S');
    expect(f[1]).toBe('1');
    expect(statCpuSeconds(f)).toBeCloseTo(3.0);
    expect(statCpuSeconds(f, true)).toBeCloseTo(3.5);
    expect(() => statFields('garbage')).toThrow(/not a \/proc stat line/);
    expect(() => statCpuSeconds(statFields('1 (x) S 1'))).toThrow(/without CPU times/);
  });

  it('counts what a process and its children use, the ended ones too, and fails for a process that is gone', async () => {
    // A shell whose child does a fixed amount of work (about 0.35 s of CPU here) and ends; the shell stays.
    const work = "sh -c 'i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done'";
    const p = spawn('sh', ['-c', `${work}; echo done; sleep 10`], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    try {
      const before = treeCpuSeconds(p.pid!);
      await new Promise((r) => p.stdout!.once('data', r));
      const used = treeCpuSeconds(p.pid!) - before;
      expect(used).toBeGreaterThan(0.15);
      expect(used).toBeLessThan(3);
      // By name: the shell and its (reaped) child are both `sh`; the sleep may have started by now.
      const byName = treeCpuByName(p.pid!);
      expect(Object.keys(byName).filter((k) => k !== 'sleep')).toEqual(['sh']);
      expect(byName.sh).toBeGreaterThan(0.15);
    } finally {
      p.kill('SIGKILL');
    }
    await new Promise((r) => p.once('exit', r));
    await new Promise((r) => setTimeout(r, 50));
    expect(() => treeCpuSeconds(p.pid!)).toThrow(/gone/);
  });

  it("reads a namespace's UDP drops from /proc/net/snmp", () => {
    const snmp = [
      'Ip: Forwarding DefaultTTL',
      'Ip: 1 64',
      'Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors',
      'Udp: 13365948 11829 8 6361565 7 3 0 0 0',
      'UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors',
      'UdpLite: 0 0 0 0 0 0 0 0 0',
    ].join('\n');
    expect(udpDrops(snmp)).toEqual({ inErrors: 8, rcvbufErrors: 7, sndbufErrors: 3 });
    expect(() => udpDrops('Ip: 1\nIp: 2\n')).toThrow(/no Udp/);
    expect(() => udpDrops('Udp: InDatagrams\nUdp: 5\n')).toThrow(/no Udp InErrors/);
  });
});
