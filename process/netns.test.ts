import { execFileSync, spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { listNamespaces, netemAvailable, netnsAllowed, StackNetwork, sweepDeadOwners } from './netns.ts';

// Real namespaces, links and rules (root only): what the stack's --netns and
// the fault steps stand on.
describe.skipIf(!netnsAllowed())('StackNetwork', () => {
  let net: StackNetwork | undefined;
  afterAll(() => net?.destroy());

  it('joins nodes on a bridge, impairs a link (counted loss, a tbf), clears it, and leaves nothing when destroyed', async () => {
    net = await StackNetwork.create();
    const a = await net.add('node-a');
    const b = await net.add('node-b');
    expect(a.host).toMatch(new RegExp(`^${net.subnet.replace(/\./g, '\\.')}\\.\\d+$`));
    expect(a.host).not.toBe(b.host);
    // UDP from a to b, 2,000 datagrams, half of them dropped at b.
    await net.impair('node-b', { lossPercent: 50 });
    const send = `for i in $(seq 2000); do echo x; done | while read l; do echo "$l" > /dev/udp/${b.host}/5002; done`;
    execFileSync('ip', [...a.exec.slice(1), 'bash', '-c', send], { timeout: 60_000 });
    const dropped = await net.dropped('node-b');
    expect(dropped).toBeGreaterThan(800);
    expect(dropped).toBeLessThan(1200);
    // Outgoing: what b receives passes, half of what b sends is dropped.
    await net.impair('node-b', { lossPercent: 50, lossDirection: 'out' });
    execFileSync('ip', [...a.exec.slice(1), 'bash', '-c', send.replace('2000', '500')], { timeout: 60_000 });
    expect(await net.dropped('node-b')).toBe(0);
    const back = `for i in $(seq 1000); do echo x > /dev/udp/${a.host}/5002; done`;
    execFileSync('ip', [...b.exec.slice(1), 'bash', '-c', back], { timeout: 60_000 });
    expect(await net.dropped('node-b')).toBeGreaterThan(380);
    expect(await net.dropped('node-b')).toBeLessThan(620);
    await net.impair('node-b', { rate: { text: '1mbit', bitsPerSecond: 1e6 } });
    expect(await net.dropped('node-b')).toBe(0); // replaced: no loss rule now
    const port = await net.bridgePort('node-b');
    expect(execFileSync('tc', ['-n', net.ns, 'qdisc', 'show', 'dev', port], { encoding: 'utf8' })).toMatch(/tbf/);
    if (!netemAvailable()) await expect(net.impair('node-b', { delayMs: 20 })).rejects.toThrow(/no sch_netem/);
    await net.clear('node-b');
    expect(execFileSync('tc', ['-n', net.ns, 'qdisc', 'show', 'dev', port], { encoding: 'utf8' })).not.toMatch(
      /tbf|netem/,
    );
    // Another process (the actuator) joins the same network by name.
    const joined = StackNetwork.join(net.info());
    const c = await joined.add('node-c');
    expect([a.host, b.host]).not.toContain(c.host);
    await joined.remove('node-c');
    expect(listNamespaces()).not.toContain(c.ns);

    const { ns, subnet } = net;
    net.destroy();
    net = undefined;
    expect(listNamespaces().filter((n) => n.startsWith(ns))).toEqual([]);
    expect(execFileSync('ip', ['-4', '-br', 'addr'], { encoding: 'utf8' })).not.toContain(`${subnet}.`);
  }, 120_000);

  it('refuses to join what is not a stack namespace', () => {
    expect(() => StackNetwork.join({ ns: 'eth0', subnet: '198.18.1' })).toThrow(/--netns/);
    expect(() => StackNetwork.join({ ns: 'canopy-1', subnet: '10.0.0' })).toThrow(/--netns-subnet/);
  });

  it('sweeps the namespaces of owners that are gone', () => {
    // A pid that is surely not running: past pid_max.
    const dead = 'canopy-4194399';
    spawnSync('ip', ['netns', 'add', dead]);
    spawnSync('ip', ['netns', 'add', `${dead}-egress-1`]);
    expect(sweepDeadOwners()).toEqual(expect.arrayContaining([dead, `${dead}-egress-1`]));
    expect(listNamespaces().filter((n) => n.startsWith(dead))).toEqual([]);
  });
});
