import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { parseDuration } from '../process/duration.ts';
import { evalJsonnet } from '../rules/jsonnet.ts';
import { instantQuery } from '../servers/prometheus.ts';
import { startStack } from '../stack/stack.ts';
import type { BenchResult } from './result.ts';

const ALERT = 'MediaTreeRTPLoss';
const NODE = 'egress-1';
const LOSS_PERCENT = 5;

/** The production timings the floor is made of: the rule pack's `_config`, deploy/ for the rest. */
function productionTimings(): { scrape: string; evaluation: string; forDuration: string; groupWait: string } {
  const c = evalJsonnet(`(import 'mixin.libsonnet')._config`) as {
    ruleInterval: string;
    forDurations: { rtpLoss: string };
  };
  const prom = evalJsonnet(`(import 'deploy/prometheus.libsonnet').new(sd='file')`) as {
    global: { scrape_interval: string };
  };
  const am = parse(readFileSync(fileURLToPath(new URL('../deploy/alertmanager.yml', import.meta.url)), 'utf8')) as {
    route: { group_wait: string };
  };
  return {
    scrape: prom.global.scrape_interval,
    evaluation: c.ruleInterval,
    forDuration: c.forDurations.rtpLoss,
    // The loss alert goes to people: the root route's group_wait.
    groupWait: am.route.group_wait,
  };
}

const sec = (d: string) => {
  const ms = parseDuration(d);
  if (ms === null) throw new Error(`not a duration: ${d}`);
  return ms / 1000;
};

/** A stand-in for Slack's webhook: the time each notification naming `alert` arrived. */
function slackListener(alert: string): Promise<{ server: Server; url: string; firstAt: () => number | null }> {
  let first: number | null = null;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      if (first === null && body.includes(alert) && body.includes('FIRING')) first = performance.now();
      res.end('ok');
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      resolve({ server, url: `http://127.0.0.1:${port}/`, firstAt: () => first });
    }),
  );
}

/**
 * 5 % loss on one egress node's link (nftables, in the stack's per-node
 * network), at the pack's production timings: the time from the first packet
 * the rule dropped to the loss alert's notification (Alertmanager's Slack
 * receiver), against the floor those timings allow (scrape + evaluation +
 * `for` + group_wait). Also: the loss the node's metrics report against what
 * the rule counted. RATIO = detection / floor (lower is better; target <= 1.25).
 */
export async function benchLossDetection(log: (l: string) => void): Promise<BenchResult> {
  const t = productionTimings();
  const floor = sec(t.scrape) + sec(t.evaluation) + sec(t.forDuration) + sec(t.groupWait);
  log(
    `floor: scrape ${t.scrape} + evaluation ${t.evaluation} + for ${t.forDuration} + group_wait ${t.groupWait} = ${floor.toFixed(0)} s`,
  );
  const slack = await slackListener(ALERT);
  // No scale-out: the loss also fires the packet_loss scale-out, and new nodes would only add load here.
  const stack = await startStack({
    shape: { netns: true, maxSubtrees: 0 },
    scrapeInterval: t.scrape,
    evaluationInterval: t.evaluation,
    rules: {
      ruleInterval: t.evaluation,
      dashboardRuleInterval: t.evaluation,
      forDurations: { rtpLoss: t.forDuration },
    },
    slackUrl: slack.url,
    log: (l) => log(`  ${l}`),
  });
  const net = stack.network!;
  const prom = stack.urls.prometheus;
  const lostSeries = `sum(media_tree_egress_rtp_packets_lost_total{node_id="${NODE}"})`;
  const lostNow = async () => Number((await instantQuery(prom, lostSeries)).result[0]?.value[1] ?? Number.NaN);
  try {
    const injection = stack.nodes.find((n) => n.type === 'injection')!;
    const res = await fetch(`${injection.url}/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sessionId: 'loss-1', audioSsrc: 5150, videoSsrc: 5151 }),
    });
    if (res.status !== 201) throw new Error(`session: ${res.status} ${await res.text()}`);
    // A steady baseline first: the node's loss series scraped, at 0.
    const deadline = Date.now() + 120_000;
    while (!(Number.isFinite(await lostNow()) && (await lostNow()) === 0)) {
      if (Date.now() > deadline) throw new Error(`no loss series for ${NODE} at 0 in Prometheus`);
      await new Promise((r) => setTimeout(r, 1_000));
    }
    await new Promise((r) => setTimeout(r, 2 * sec(t.scrape) * 1000));
    const lostBefore = await lostNow();

    await net.impair(NODE, { lossPercent: LOSS_PERCENT });
    let firstDrop = 0;
    while (!firstDrop) {
      if ((await net.dropped(NODE)) > 0) firstDrop = performance.now();
      else await new Promise((r) => setTimeout(r, 20));
    }
    log(`impaired ${NODE}: ${LOSS_PERCENT} % of its incoming UDP dropped; first packet dropped`);
    let firingAt: number | null = null;
    const giveUp = performance.now() + 3 * floor * 1000;
    while (slack.firstAt() === null) {
      if (performance.now() > giveUp) throw new Error(`${ALERT} not notified within ${3 * floor} s`);
      if (firingAt === null) {
        const r = await instantQuery(prom, `ALERTS{alertname="${ALERT}", alertstate="firing", node_id="${NODE}"}`);
        if (r.result.length) firingAt = performance.now();
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    const detection = (slack.firstAt()! - firstDrop) / 1000;
    log(
      `detection: first lost packet -> ${ALERT} firing in Prometheus ${firingAt ? ((firingAt - firstDrop) / 1000).toFixed(1) : '?'} s -> notified ${detection.toFixed(1)} s`,
    );

    // The loss reported: what the node's metrics count against what the rule dropped.
    const dropped = await net.dropped(NODE);
    await net.clear(NODE);
    await new Promise((r) => setTimeout(r, 3 * sec(t.scrape) * 1000));
    const reported = (await lostNow()) - lostBefore;
    const off = (reported - dropped) / dropped;
    log(
      `loss: the rule dropped ${dropped} packets, the metrics report ${reported} lost (${(off * 100).toFixed(1)} %; within 10 %: ${Math.abs(off) <= 0.1 ? 'yes' : 'NO'})`,
    );
    log(`detection ${detection.toFixed(1)} s / floor ${floor.toFixed(0)} s; target <= 1.25`);
    return { ratio: detection / floor };
  } finally {
    await stack.stop();
    slack.server.close();
  }
}
