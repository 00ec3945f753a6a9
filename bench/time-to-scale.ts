import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalProvisioner } from '../alertmanager-webhook/provisioners/local.ts';
import { actuatorKeys, readSubtrees, Topology } from '../topology/index.ts';
import { DEMO } from '../stack/demo-config.ts';
import { instantQuery } from '../servers/prometheus.ts';
import { startStack, type Stack } from '../stack/stack.ts';
import { releaseWebRtc, type Viewer, watch } from '../viewers/whep-client.ts';
import type { BenchResult } from './result.ts';
import { median } from './scrape.ts';

export interface TimeToScaleOptions {
  runs: number;
}

const seconds = (d: string) => {
  const m = /^(\d+)(ms|s|m)$/.exec(d);
  if (!m) throw new Error(`not a duration: ${d}`);
  return Number(m[1]) * (m[2] === 'ms' ? 0.001 : m[2] === 'm' ? 60 : 1);
};

interface Milestones {
  /** Seconds from the first viewer's offer to the last one connected (real viewers take a while each). */
  fill: number;
  alertFiring: number;
  webhookReceived: number;
  subtreeReady: number;
  firstRtp: number;
  targetsUp: number;
}

/** When each milestone was first seen (performance.now()). */
type MilestoneTimes = Partial<Record<Exclude<keyof Milestones, 'fill'>, number>>;

/**
 * The local stack, several times: from the moment the offered load crosses the
 * scale-out threshold (the viewer that fills the pools past 85 %) to the alert
 * firing, the webhook received, the subtree ready, the first RTP packet on a
 * new egress node and the new targets up in Prometheus; against the floor those
 * intervals allow: scrape + evaluation + `for` + group_wait + provisioning
 * measured alone. RATIO = median end-to-end / floor (lower is better).
 */
export async function benchTimeToScale(o: TimeToScaleOptions, log: (l: string) => void): Promise<BenchResult> {
  const provisioning = await provisioningAlone();
  const floor =
    seconds(DEMO.scrapeInterval) +
    seconds(DEMO.evaluationInterval) +
    seconds(DEMO.rules.forDurations.scaleOut) +
    seconds(DEMO.alertmanager.groupWait) +
    provisioning;
  log(
    `floor: scrape ${DEMO.scrapeInterval} + evaluation ${DEMO.evaluationInterval} + for ${DEMO.rules.forDurations.scaleOut} + group_wait ${DEMO.alertmanager.groupWait} + provisioning alone ${provisioning.toFixed(2)} s = ${floor.toFixed(2)} s`,
  );
  const totals: number[] = [];
  for (let i = 0; i < o.runs; i++) {
    const m = await oneRun();
    const fmt = (v: number) => `${v.toFixed(2)} s`;
    log(
      `run ${i + 1}: fill ${fmt(m.fill)}; then alert firing ${fmt(m.alertFiring)}, webhook received ${fmt(m.webhookReceived)}, subtree ready ${fmt(m.subtreeReady)}, first RTP on a new node ${fmt(m.firstRtp)}, targets up ${fmt(m.targetsUp)}`,
    );
    totals.push(Math.max(m.targetsUp, m.firstRtp));
  }
  // Every run's viewers are closed: let the command exit.
  releaseWebRtc();
  const end = median(totals);
  log(
    `end-to-end (median of ${o.runs}, to the later of first RTP and targets up): ${end.toFixed(2)} s; floor ${floor.toFixed(2)} s; target <= 1.25x`,
  );
  return { ratio: end / floor };
}

/** One size-N subtree started and made ready by the local provisioner, with nothing else going on. */
async function provisioningAlone(): Promise<number> {
  const stack = await startStack();
  const dir = mkdtempSync(join(tmpdir(), 'canopy-tts-prov-'));
  try {
    const p = new LocalProvisioner({
      stateDir: dir,
      redisUrl: stack.urls.redis,
      portBase: 50_000 + Math.floor(Math.random() * 50) * 100,
    });
    const spec = {
      tree: 'tts-floor',
      subtree: 'tts-floor-st-1',
      slot: 'tts-floor-slot',
      size: DEMO.actuator.subtreeSize,
    };
    const t0 = performance.now();
    await p.create(spec);
    await p.waitReady(spec, 60_000);
    const took = (performance.now() - t0) / 1000;
    await p.delete(spec.tree, spec.subtree);
    return took;
  } finally {
    await stack.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function oneRun(): Promise<Milestones> {
  // The floor is the reactive path's (threshold crossed, then scrape, evaluation,
  // `for`, group_wait): the demo's predictive alert, which can fire before the
  // crossing, is off here.
  const stack = await startStack({ rules: { forecastScaleOut: false } });
  const viewers: Viewer[] = [];
  try {
    const injection = stack.nodes.find((n) => n.type === 'injection')!;
    const egress = stack.nodes.filter((n) => n.type === 'egress');
    const res = await fetch(`${injection.url}/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sessionId: 'tts-1', audioSsrc: 4242, videoSsrc: 4243 }),
    });
    if (res.status !== 201) throw new Error(`session: ${res.status}`);
    await waitFor(
      async () => (await Promise.all(egress.map((n) => mountpoints(n.url)))).every((c) => c > 0),
      30_000,
      'mountpoints on the baseline',
    );
    // The load is offered to a monitored tree: Prometheus discovers file_sd
    // targets seconds after it starts, and that start-up is not time to scale.
    await waitFor(() => egressTargetsUp(stack, egress), 30_000, 'the baseline egress targets up in Prometheus');
    // The milestones are watched from the first viewer on: the rules may see
    // the pools cross the threshold before the last viewer is in, and a
    // quick scale-out can resolve the alert before that viewer connects.
    const at: MilestoneTimes = {};
    let newNodes: Array<{ id: string; url: string }> = [];
    let watching = true;
    const watcher = (async () => {
      while (watching && Object.keys(at).length < 5) {
        await checkMilestones(stack, at, newNodes, (n) => (newNodes = n)).catch(() => {});
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    // Fill both pools past 85 % with real viewers through the tree's entry
    // point (it spreads them): the moment the last one connects is t0.
    const perNode = Math.ceil(DEMO.topology.egressPoolSize * 0.86 - 2);
    let t0 = 0;
    const fillFrom = performance.now();
    try {
      for (let i = 0; i < perNode * egress.length; i++) {
        viewers.push(await watch(`${injection.url}/whep/tts-1`, { timeoutMs: 15_000 }));
        t0 = performance.now();
      }
      const deadline = Date.now() + 120_000;
      while (Object.keys(at).length < 5) {
        if (Date.now() > deadline) throw new Error(`milestones not reached: ${JSON.stringify(at)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      watching = false;
      await watcher;
    }
    const since = (t: number | undefined) => (t! - t0) / 1000;
    const m: Milestones = {
      fill: (t0 - fillFrom) / 1000,
      alertFiring: since(at.alertFiring),
      webhookReceived: since(at.webhookReceived),
      subtreeReady: since(at.subtreeReady),
      firstRtp: since(at.firstRtp),
      targetsUp: since(at.targetsUp),
    };
    return m;
  } finally {
    await Promise.all(viewers.map((v) => v.close().catch(() => {})));
    await stack.stop();
  }
}

/** Records (performance.now()) each milestone first seen; `nodes` are the subtree's, once recorded. */
async function checkMilestones(
  stack: Stack,
  at: MilestoneTimes,
  nodes: Array<{ id: string; url: string }>,
  setNodes: (n: Array<{ id: string; url: string }>) => void,
): Promise<void> {
  if (
    at.alertFiring === undefined &&
    (await instantQuery(stack.urls.prometheus, 'ALERTS{alertname="MediaTreeScaleOut", alertstate="firing"}')).result
      .length
  )
    at.alertFiring = performance.now();
  if (at.webhookReceived === undefined && (await acceptedNotifications(stack)) > 0)
    at.webhookReceived = performance.now();
  if (at.subtreeReady === undefined && (await stack.redis.hlen(actuatorKeys.subtrees(stack.tree))) > 0) {
    at.subtreeReady = performance.now();
    setNodes(await subtreeNodes(stack));
    return;
  }
  if (
    nodes.length &&
    at.firstRtp === undefined &&
    (await Promise.all(nodes.map((n) => rtpReceived(n.url)))).some((c) => c > 0)
  )
    at.firstRtp = performance.now();
  if (nodes.length && at.targetsUp === undefined && (await egressTargetsUp(stack, nodes)))
    at.targetsUp = performance.now();
}

async function waitFor(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** True when Prometheus scrapes every one of these egress nodes' apps successfully. */
async function egressTargetsUp(stack: Stack, nodes: Array<{ id: string }>): Promise<boolean> {
  const up = await instantQuery(stack.urls.prometheus, `up{job="media-tree-egress"} == 1`);
  const ids = new Set(up.result.map((r) => r.metric.node_id));
  return nodes.every((n) => ids.has(n.id));
}

async function metricsText(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(2_000) })).text();
}
const sumOf = (text: string, name: string) =>
  text
    .split('\n')
    .filter((l) => l.startsWith(name))
    .reduce((a, l) => a + Number(l.split(' ').at(-1)), 0);
const mountpoints = async (url: string) => sumOf(await metricsText(url), 'media_tree_egress_active_mountpoints');
const rtpReceived = async (url: string) =>
  sumOf(await metricsText(url).catch(() => ''), 'media_tree_egress_rtp_packets_received_total');
async function acceptedNotifications(stack: Stack): Promise<number> {
  const text = await metricsText(stack.urls.actuator);
  return sumOf(text, 'canopy_actuator_notifications_total{outcome="accepted"}');
}
async function subtreeNodes(stack: Stack): Promise<Array<{ id: string; url: string }>> {
  const topo = new Topology(stack.redis, stack.tree);
  const out: Array<{ id: string; url: string }> = [];
  for (const record of (await readSubtrees(stack.redis, stack.tree)).values()) {
    for (const id of record.nodes) {
      const info = await topo.getNode(id);
      if (info) out.push({ id, url: `http://${info.host}:${info.httpPort}` });
    }
  }
  return out;
}
