import { setTimeout as sleep } from 'node:timers/promises';
import { startStack } from '../stack/stack.ts';
import { STREAMS, type Stream, type StreamCounts } from '../viewers/receiver.ts';
import { type Viewer, WhepError, watch } from '../viewers/whep-client.ts';
import type { BenchResult } from './result.ts';

const NODE = 'egress-1';
const SESSION = 'nack-1';
const GROUPS = ['nack', 'plain'] as const;
type Group = (typeof GROUPS)[number];

export interface NackRepairOptions {
  /** Percent of the egress's outgoing UDP dropped on its link. */
  lossPercent: number;
  /** Viewers per group. */
  viewers: number;
  /** The measuring window. */
  seconds: number;
}

/** What a group's viewers received in the window, per stream: packets expected and lost (after any resend). */
type Tally = Record<Stream, { expected: number; lost: number; nacksSent: number }>;

function tally(before: Array<Record<Stream, StreamCounts>>, after: Array<Record<Stream, StreamCounts>>): Tally {
  const t = {} as Tally;
  for (const s of STREAMS) {
    t[s] = { expected: 0, lost: 0, nacksSent: 0 };
    after.forEach((a, i) => {
      const b = before[i]![s];
      t[s].expected += a[s].expected - b.expected;
      t[s].lost += a[s].lost - b.lost;
      t[s].nacksSent += a[s].nacksSent - b.nacksSent;
    });
  }
  return t;
}

/** A viewer of the session through the tree's entry point, retried while the session is still reaching the egress. */
async function join(url: string, nack: boolean, bindAddress: string): Promise<Viewer> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      return await watch(url, { nack, bindAddress });
    } catch (err) {
      if (!(err instanceof WhepError) || Date.now() > deadline) throw err;
      await sleep(500);
    }
  }
}

/**
 * `canopy bench nack-repair`: the loss NACK retransmission repairs. One egress
 * node in a stack with a network per node (root); `lossPercent` of the UDP it
 * sends over its link is dropped by an nftables rule where the link enters
 * the bridge (on the wire: the egress's sends succeed), so the loss hits
 * packets after the egress kept them for NACKs. Two groups watch it
 * at once through the same rule, one sending NACKs and one not; each group's
 * loss per stream over the window (from the RTP sequence numbers, a resend in
 * time fills its gap). RATIO = video loss with NACK / without (lower is better).
 */
export async function benchNackRepair(o: NackRepairOptions, log: (l: string) => void): Promise<BenchResult> {
  // One egress, a pool for every viewer, no scale-out (the loss would fire it).
  const stack = await startStack({
    shape: { netns: true, maxSubtrees: 0, egressNodes: 1, egressPoolSize: Math.max(20, 4 * o.viewers) },
    log: (l) => log(`  ${l}`),
  });
  const net = stack.network!;
  const viewers: Record<Group, Viewer[]> = { nack: [], plain: [] };
  try {
    const injection = stack.nodes.find((n) => n.type === 'injection')!;
    const res = await fetch(`${injection.url}/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sessionId: SESSION, audioSsrc: 6150, videoSsrc: 6151 }),
    });
    if (res.status !== 201) throw new Error(`session: ${res.status} ${await res.text()}`);
    const url = `${injection.url}/whep/${SESSION}`;
    // Alternately, so neither group is the one that joined first.
    for (let i = 0; i < o.viewers; i++)
      for (const g of GROUPS) viewers[g].push(await join(url, g === 'nack', stack.localHost));
    const elsewhere = [...viewers.nack, ...viewers.plain].filter((v) => !v.answeredBy.includes(`${net.subnet}.`));
    if (elsewhere.length) throw new Error(`viewers answered by ${elsewhere[0]!.answeredBy}, not ${NODE}`);
    // Media flowing to every viewer before the window.
    const deadline = Date.now() + 30_000;
    while (![...viewers.nack, ...viewers.plain].every((v) => v.counts().video.packets > 50)) {
      if (Date.now() > deadline) throw new Error('not every viewer received video within 30 s');
      await sleep(250);
    }
    log(`${o.viewers} viewers sending NACKs and ${o.viewers} not, watching ${NODE}`);

    const before = { nack: viewers.nack.map((v) => v.counts()), plain: viewers.plain.map((v) => v.counts()) };
    await net.impair(NODE, { lossPercent: o.lossPercent, lossDirection: 'out' });
    log(`impaired ${NODE}: ${o.lossPercent} % of the UDP it sends over its link dropped, for ${o.seconds} s`);
    await sleep(o.seconds * 1000);
    const dropped = await net.dropped(NODE);
    await net.clear(NODE);
    // Resends of the window's last losses still on their way.
    await sleep(1_000);
    const t: Record<Group, Tally> = {
      nack: tally(
        before.nack,
        viewers.nack.map((v) => v.counts()),
      ),
      plain: tally(
        before.plain,
        viewers.plain.map((v) => v.counts()),
      ),
    };
    log(`the rule dropped ${dropped} packets (both groups' RTP, RTCP, STUN and resends)`);
    const pct = (x: { expected: number; lost: number }) => (x.expected ? (100 * x.lost) / x.expected : Number.NaN);
    for (const g of GROUPS)
      for (const s of STREAMS)
        log(
          `${g} ${s}: ${t[g][s].lost} lost of ${t[g][s].expected} expected (${pct(t[g][s]).toFixed(3)} %), ${t[g][s].nacksSent} NACKs sent`,
        );
    for (const s of STREAMS) log(`${s}: loss with NACK / without = ${(pct(t.nack[s]) / pct(t.plain[s])).toFixed(4)}`);
    return { ratio: pct(t.nack.video) / pct(t.plain.video) };
  } finally {
    await Promise.all([...viewers.nack, ...viewers.plain].map((v) => v.close().catch(() => {})));
    await stack.stop();
  }
}
