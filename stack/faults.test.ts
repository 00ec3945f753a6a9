import { execFileSync, spawn } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { listNamespaces, netnsAllowed } from '../process/netns.ts';
import { processAlive } from '../process/signals.ts';
import { descendantsOf } from '../process/proc.ts';
import { waitUntil } from '../process/wait.ts';
import { instantQuery } from '../servers/prometheus.ts';
import { loadScenario, parseScenario, runScenario, type ScenarioReport } from './scenario.ts';
import { startStack, type Stack } from './stack.ts';

// The fault scenarios and the per-node network. Heavy (each starts a whole
// stack): run under `flock /work/notes/heavy.lock`. Namespaces need root.
const canNetns = netnsAllowed();
// The fault scenarios run whole stacks for 1 to 6 minutes each, about 11
// minutes in all: `make test` runs them after the stack's end-to-end file, one
// file at a time (two stacks at once on two cores make both flaky). Where
// namespaces are not allowed they are skipped; CANOPY_E2E_FAULTS=0 skips them
// for a quick local run.
const runFaults = canNetns && process.env.CANOPY_E2E_FAULTS !== '0';
if (!canNetns)
  console.warn(
    'stack/faults.test.ts: network namespaces are not allowed here (root, ip, nft, tc): fault scenarios skipped',
  );

/** What a stack's network could leave behind: its namespaces, its root veth, its addresses. */
function leftovers(ns: string, subnet: string): string[] {
  const out: string[] = [];
  for (const n of listNamespaces()) if (n === ns || n.startsWith(`${ns}-`)) out.push(`namespace ${n}`);
  const links = execFileSync('ip', ['-br', 'link'], { encoding: 'utf8' });
  const addrs = execFileSync('ip', ['-4', '-br', 'addr'], { encoding: 'utf8' });
  const i = (Number(subnet.split('.')[1]) - 18) * 256 + Number(subnet.split('.')[2]);
  if (new RegExp(`^cnpy${i}[@ ]`, 'm').test(links)) out.push(`link cnpy${i}`);
  if (addrs.includes(`${subnet}.`)) out.push(`address in ${subnet}.0/24`);
  return out;
}

describe('fault steps: validation', () => {
  it('the shipped fault scenarios validate', () => {
    const loss = loadScenario('loss');
    expect(loss.stack?.netns).toBe(true);
    expect(loss.steps.some((s) => 'impair' in s)).toBe(true);
    for (const name of ['outages', 'redis-loss']) {
      const sc = loadScenario(name);
      expect(sc.stack).toMatchObject({ netns: true, maxSubtrees: 1 });
    }
    expect(
      loadScenario('outages')
        .steps.filter((s) => 'stop' in s)
        .map((s) => Object.values(s)[0]),
    ).toEqual(['prometheus', 'alertmanager', 'redis']);
    expect(loadScenario('redis-loss').steps.filter((s) => 'redis-flush' in s)).toEqual([
      { 'redis-flush': { mode: 'restart' } },
      { 'redis-flush': { mode: 'flushall' } },
    ]);
  });

  it('refuses bad faults with the path of what is wrong, before anything runs', () => {
    const bad = [
      'impair: { node: egress-1 }', // nothing to impose
      'impair: { node: egress-1, loss: 101 }',
      'impair: { node: Egress_1, loss: 5 }',
      'impair: { node: egress-1, rate: fast }',
      'impair: { node: egress-1, loss: 5, jitter: 5ms }', // jitter without a delay
      'impair: { node: egress-1, loss: 5, direction: sideways }',
      'impair: { node: egress-1, rate: 800kbit, direction: out }', // a direction without a loss
      'clear: {}',
      'kill: { component: grafana }',
      'kill: { node: egress-1, component: redis }',
      'restart: { component: everything }',
      'stop: actuator',
      'start: { component: redis }',
      'redis-flush: { mode: gently }',
    ];
    for (const step of bad)
      expect(() => parseScenario(`name: x\nsteps:\n  - ${step}\n`), step).toThrow(/invalid scenario: steps\.0/);
    const ok = parseScenario(
      'name: x\nstack: { netns: true }\nsteps:\n  - impair: { node: egress-1, loss: 2.5, rate: 800kbit }\n  - impair: { node: egress-1, loss: 5, direction: out }\n  - clear: { node: egress-1 }\n  - kill: { node: egress-2 }\n  - kill: { component: actuator }\n  - restart: { component: prometheus }\n  - stop: redis\n  - start: redis\n  - redis-flush: {}\n  - redis-flush: { mode: flushall }\n',
    );
    expect(ok.steps).toHaveLength(10);
    expect(ok.steps[1]).toEqual({ impair: { node: 'egress-1', loss: 5, direction: 'out' } });
    expect(ok.steps.at(-2)).toEqual({ 'redis-flush': { mode: 'restart' } });
  });
});

/** `canopy stack none --netns`, its output kept. */
function stackNone() {
  const BIN = new URL('../bin/canopy.mjs', import.meta.url).pathname;
  const proc = spawn(process.execPath, [BIN, 'stack', 'none', '--netns'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  return { proc, exited, output: () => out };
}

describe.skipIf(!runFaults)('canopy stack --netns: a network per node, and nothing left behind', () => {
  it('nodes and their node_exporters in namespaces of their own; SIGINT, SIGTERM and SIGKILL each leave no namespace, link or address', async () => {
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGKILL'] as const) {
      const { proc, exited, output } = stackNone();
      let descendants: number[] = [];
      try {
        await waitUntil(`the stack up (${signal})`, () => /^network: /m.test(output()), {
          timeoutMs: 180_000,
          intervalMs: 250,
        });
        const [, ns, subnet] = /^network: (\S+) (\S+)\.0\/24$/m.exec(output())!;
        const prometheus = /^prometheus: (\S+)$/m.exec(output())![1]!;
        expect(leftovers(ns!, subnet!).length).toBeGreaterThan(0);
        if (signal === 'SIGINT') {
          // Per-node NIC counters are real: each node_exporter sees its own eth0, at its own address.
          await waitUntil(
            'node_exporter eth0 series for every node',
            async () =>
              (await instantQuery(prometheus, 'node_network_receive_packets_total{device="eth0"}')).result.length === 4,
            { timeoutMs: 30_000, intervalMs: 500 },
          );
          const r = await instantQuery(prometheus, 'node_network_receive_packets_total{device="eth0"}');
          const instances = r.result.map((x) => x.metric.instance!.split(':')[0]!);
          expect(new Set(instances).size).toBe(4);
          for (const a of instances) expect(a.startsWith(`${subnet}.`)).toBe(true);
          expect(
            listNamespaces()
              .filter((n) => n.startsWith(`${ns}-`))
              .sort(),
          ).toEqual(['egress-1', 'egress-2', 'injection-1', 'relay-1'].map((n) => `${ns}-${n}`));
        }
        descendants = descendantsOf(proc.pid!);
        proc.kill(signal);
        await exited;
        await waitUntil(
          `nothing left after ${signal}`,
          () => leftovers(ns!, subnet!).length === 0 && descendants.filter(processAlive).length === 0,
          { timeoutMs: 30_000, intervalMs: 250 },
        ).catch(() => {});
        expect(leftovers(ns!, subnet!), signal).toEqual([]);
        expect(descendants.filter(processAlive), signal).toEqual([]);
      } finally {
        if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      }
    }
  }, 600_000);
});

/** The loss, in packets, a node's egress metrics report between two times (seconds). */
async function egressLost(prometheus: string, node: string, at: number): Promise<number> {
  const r = await instantQuery(prometheus, `sum(media_tree_egress_rtp_packets_lost_total{node_id="${node}"})`, {
    time: String(at),
  });
  return Number(r.result[0]?.value[1] ?? 0);
}

describe.skipIf(!runFaults)('the loss scenario end to end', () => {
  let stack: Stack | undefined;
  afterAll(async () => {
    await stack?.stop();
  }, 60_000);

  it('5 % loss on one link: its metrics, the loss alert and the packet_loss scale-out, resolved on clear; a rate limit grows loss and jitter', async () => {
    const scenario = loadScenario('loss');
    stack = await startStack({ shape: scenario.stack });
    const { urls, network } = stack;
    const report: ScenarioReport = await runScenario(stack, scenario);
    const t = (what: RegExp) => report.events.find((e) => what.test(e.what))!.at / 1000;
    const impaired1 = t(/^impair egress-1/);
    const cleared1 = t(/^clear egress-1/);

    // What the rule dropped, the egress node's RTP statistics counted as lost (within 10 %).
    const dropped = report.impaired!['egress-1']!.dropped;
    expect(dropped).toBeGreaterThan(50);
    const lost =
      (await egressLost(urls.prometheus, 'egress-1', cleared1 + 2)) -
      (await egressLost(urls.prometheus, 'egress-1', impaired1));
    expect(Math.abs(lost - dropped) / dropped).toBeLessThan(0.1);
    // egress-2's link was clean then: nothing lost there.
    expect(await egressLost(urls.prometheus, 'egress-2', cleared1)).toBe(0);
    // The alerts fired (waited for by the scenario), for that node and that reason.
    expect(report.firing.MediaTreeRTPLoss).toBeGreaterThan(impaired1 * 1000);
    expect(report.firing.MediaTreeScaleOut).toBeGreaterThan(impaired1 * 1000);

    // The rate limit: loss and jitter on egress-2 grow together while it holds.
    const limited = t(/^impair egress-2/);
    const freed = t(/^clear egress-2/);
    const q = async (e: string, at: number) =>
      Number((await instantQuery(urls.prometheus, e, { time: String(at) })).result[0]?.value[1] ?? 0);
    // Over the last 10 s, not at an instant: the congested link also carries
    // Prometheus' scrapes, and one that fails marks the series stale.
    const jitter = (at: number) =>
      q(`max(max_over_time(media_tree_egress_rtp_jitter_seconds{node_id="egress-2", stream_type="video"}[10s]))`, at);
    const lostRate = (at: number) =>
      q(`sum(increase(media_tree_egress_rtp_packets_lost_total{node_id="egress-2"}[20s]))`, at);
    expect(await lostRate(limited)).toBe(0);
    expect(await lostRate(freed)).toBeGreaterThan(20);
    expect(await jitter(freed)).toBeGreaterThan(2 * (await jitter(limited)));

    // Clear really cleared: no rule or qdisc left on either link.
    expect(await network!.dropped('egress-1')).toBe(0);
    const ns = network!.ns;
    await stack.stop();
    stack = undefined;
    expect(listNamespaces().filter((n) => n === ns || n.startsWith(`${ns}-`))).toEqual([]);
  }, 600_000);
});

interface Action {
  kind: string;
  result: string;
  subtree?: string;
  why: string;
}
async function actions(stack: Stack): Promise<Action[]> {
  return ((await (await fetch(`${stack.urls.actuator}/actions?limit=200`)).json()) as { actions: Action[] }).actions;
}

/** Egress nodes whose received-RTP counter grew over the last `window` (all serving). */
async function egressReceiving(stack: Stack, window = '15s'): Promise<string[]> {
  const r = await instantQuery(
    stack.urls.prometheus,
    `sum by (node_id) (increase(media_tree_egress_rtp_packets_received_total{tree_id="${stack.tree}"}[${window}])) > 0`,
  );
  return r.result.map((x) => x.metric.node_id!).sort();
}

describe.skipIf(!runFaults)('the outages scenario end to end', () => {
  let stack: Stack | undefined;
  afterAll(async () => {
    await stack?.stop();
  }, 60_000);

  it('Prometheus, Alertmanager and Redis each away for a minute: no scale-in, one scale-out, everything serving after', async () => {
    const scenario = loadScenario('outages');
    stack = await startStack({ shape: scenario.stack });
    const started = Date.now();
    const seen = new Set<number>();
    const watch = setInterval(() => {
      for (const p of stack?.subtreePids() ?? []) seen.add(p);
    }, 500);
    let report: ScenarioReport;
    try {
      report = await runScenario(stack, scenario);
    } finally {
      clearInterval(watch);
    }
    // Every part back and running.
    for (const c of ['redis', 'prometheus', 'alertmanager', 'actuator'] as const)
      expect(stack.components[c].running(), c).toBe(true);
    // No action lost or doubled: one scale-out, done; no scale-in; the subtree is the one it started.
    const done = await actions(stack);
    expect(done.filter((a) => a.kind === 'scale-out' && a.result === 'done')).toHaveLength(1);
    expect(done.filter((a) => a.kind === 'scale-in' && a.result === 'done')).toEqual([]);
    expect(Object.keys(report.subtrees)).toHaveLength(1);
    const { readSubtrees } = await import('../topology/index.ts');
    expect((await readSubtrees(stack.redis, stack.tree)).size).toBe(1);
    expect(seen.size).toBe(2);
    expect([...seen].every(processAlive)).toBe(true);
    // Absent data never fired a scale-in, over the whole run (Prometheus' own record of its alerts).
    const secs = Math.ceil((Date.now() - started) / 1000);
    const scaleIn = await instantQuery(
      stack.urls.prometheus,
      `max_over_time(ALERTS{alertname="MediaTreeScaleIn", alertstate="pending"}[${secs}s]) or max_over_time(ALERTS{alertname="MediaTreeScaleIn", alertstate="firing"}[${secs}s])`,
    );
    expect(scaleIn.result).toEqual([]);
    // Serving again: the last viewers were placed, and all four egress nodes receive RTP.
    expect(report.events.at(-2)?.what).toMatch(/^viewers: 56/);
    await waitUntil('every egress node receiving RTP', async () => (await egressReceiving(stack!)).length === 4, {
      timeoutMs: 30_000,
      intervalMs: 1_000,
    });
    const ns = stack.network!.ns;
    await stack.stop();
    stack = undefined;
    expect(listNamespaces().filter((n) => n === ns || n.startsWith(`${ns}-`))).toEqual([]);
  }, 900_000);
});

describe.skipIf(!runFaults)('the redis-loss scenario end to end', () => {
  let stack: Stack | undefined;
  afterAll(async () => {
    await stack?.stop();
  }, 60_000);

  it('Redis restarted empty, then FLUSHALL: every node registered again, the relay keeps its destinations, the subtree is rebuilt, nothing serving deleted', async () => {
    const scenario = loadScenario('redis-loss');
    stack = await startStack({ shape: scenario.stack });
    const seen = new Set<number>();
    const watch = setInterval(() => {
      for (const p of stack?.subtreePids() ?? []) seen.add(p);
    }, 500);
    let report: ScenarioReport;
    try {
      report = await runScenario(stack, scenario);
    } finally {
      clearInterval(watch);
    }
    const { readSubtrees, Topology } = await import('../topology/index.ts');
    const topo = new Topology(stack.redis, stack.tree);
    // The subtree record rebuilt, the same one, its processes never stopped.
    const subtrees = await readSubtrees(stack.redis, stack.tree);
    expect([...subtrees.keys()]).toEqual(Object.keys(report.subtrees));
    expect(seen.size).toBe(2);
    expect([...seen].every(processAlive)).toBe(true);
    const done = await actions(stack);
    expect(done.filter((a) => a.kind === 'scale-in')).toEqual([]);
    expect(done.filter((a) => a.kind === 'reconcile' && /deleted/.test(a.why))).toEqual([]);
    // Every live node registered again, with its address.
    const egress = [...(await topo.nodeIds('egress'))].sort();
    expect(egress).toEqual(['egress-1', 'egress-2', ...subtrees.values().next().value!.nodes].sort());
    expect(await topo.nodeIds('relay')).toEqual(['relay-1']);
    expect(await topo.nodeIds('injection')).toEqual(['injection-1']);
    for (const id of egress) expect(await topo.getNode(id)).not.toBeNull();
    // Still serving: the last viewers placed, every egress node receiving RTP through the relay.
    expect(report.events.at(-2)?.what).toMatch(/^viewers: 56/);
    await waitUntil('every egress node receiving RTP', async () => (await egressReceiving(stack!)).length === 4, {
      timeoutMs: 30_000,
      intervalMs: 1_000,
    });
    const ns = stack.network!.ns;
    await stack.stop();
    stack = undefined;
    expect(listNamespaces().filter((n) => n === ns || n.startsWith(`${ns}-`))).toEqual([]);
  }, 900_000);
});
