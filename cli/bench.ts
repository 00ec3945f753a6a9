import { Command, InvalidArgumentError, Option } from 'commander';
import { benchActuator } from '../bench/actuator-latency.ts';
import { benchExporter } from '../bench/exporter.ts';
import { benchRules } from '../bench/rules.ts';
import { benchSurge } from '../bench/surge.ts';
import { benchTimeToScale } from '../bench/time-to-scale.ts';
import { benchFirstFrame, FIRST_FRAME_PUBLISHERS, type FirstFrameOptions } from '../bench/first-frame.ts';
import { benchForwarder } from '../bench/forwarder.ts';
import { benchLossDetection } from '../bench/loss-detection.ts';
import { benchEgress } from '../bench/egress.ts';
import { benchNackRepair } from '../bench/nack-repair.ts';
import type { BenchResult } from '../bench/result.ts';
import { intOption } from './options.ts';

/**
 * Runs one benchmark and prints, last, the RATIO line docs/benchmarks.md
 * promises. `webRtc`: it ran WebRTC viewers, whose library threads would keep
 * the process alive once it is done, failed or not.
 */
async function report(run: (log: (l: string) => void) => Promise<BenchResult>, webRtc = false): Promise<void> {
  try {
    const { ratio } = await run((line) => console.log(line));
    if (!Number.isFinite(ratio)) throw new Error(`benchmark produced no finite ratio (${ratio})`);
    console.log(`RATIO ${ratio.toFixed(4)}`);
  } finally {
    if (webRtc) (await import('../viewers/load.ts')).releaseWebRtc();
  }
}

export function benchCommand(): Command {
  const bench = new Command('bench')
    .description('run a benchmark; each prints its figures and ends with "RATIO <number>"')
    .showHelpAfterError();

  bench
    .command('exporter')
    .description(
      'egress exposition time per series against node_exporter, and RSS across a session churn (ratio: ours/node_exporter per series, lower is better)',
    )
    .addOption(
      intOption('--sessions <n>', 'live sessions in the egress exposition', 'CANOPY_BENCH_SESSIONS', 2000, 1, 100_000),
    )
    .addOption(intOption('--scrapes <n>', 'timed scrapes of each exporter', 'CANOPY_BENCH_SCRAPES', 200, 5, 100_000))
    .addOption(
      intOption(
        '--churn <n>',
        'session start/stop cycles for the RSS check',
        'CANOPY_BENCH_CHURN',
        100_000,
        0,
        10_000_000,
      ),
    )
    .action(async (o: { sessions: number; scrapes: number; churn: number }) => {
      await report((log) => benchExporter({ sessions: o.sessions, scrapes: o.scrapes, churnCycles: o.churn }, log));
    });

  bench
    .command('forwarder')
    .description(
      'highest loss-free (<0.1%) RTP rate through our forwarder against plain gst-launch udpsrc ! multiudpsink, same destinations (ratio: ours/baseline, higher is better)',
    )
    .addOption(
      intOption(
        '--destinations <n>',
        'destinations (each an audio and a video port)',
        'CANOPY_BENCH_DESTINATIONS',
        16,
        1,
        128,
      ),
    )
    .addOption(intOption('--step-ms <n>', 'sending time of each rate step', 'CANOPY_BENCH_STEP_MS', 2500, 100, 60_000))
    .addOption(
      intOption('--start-rate <n>', 'first rate tried, packets/s in', 'CANOPY_BENCH_START_RATE', 5000, 10, 10_000_000),
    )
    .addOption(
      intOption('--max-rate <n>', 'highest rate tried, packets/s in', 'CANOPY_BENCH_MAX_RATE', 400_000, 10, 10_000_000),
    )
    .addOption(intOption('--bisections <n>', 'bisection steps after the doubling', 'CANOPY_BENCH_BISECTIONS', 5, 0, 20))
    .action(
      async (o: { destinations: number; stepMs: number; startRate: number; maxRate: number; bisections: number }) => {
        await report((log) => benchForwarder(o, log));
      },
    );

  bench
    .command('rules')
    .description(
      'Prometheus CPU per minute of the rule pack against the seed (its DecisionEngine queries and its alert group), each alone on one head TSDB (ratio: pack/seed, lower is better)',
    )
    .addOption(intOption('--nodes <n>', 'egress nodes in the fleet', 'CANOPY_BENCH_NODES', 1000, 10, 100_000))
    .addOption(intOption('--trees <n>', 'trees the nodes are spread over', 'CANOPY_BENCH_TREES', 10, 1, 1000))
    .addOption(intOption('--cores <n>', 'CPU cores per egress node', 'CANOPY_BENCH_CORES', 8, 1, 256))
    .addOption(new Option('--sweep', '1, 10, 100 trees x 1,000, 5,000 nodes x 1, 8 cores; RATIO at the default fleet'))
    .addOption(
      intOption('--seconds <n>', 'steady-state window of each side, seconds', 'CANOPY_BENCH_SECONDS', 60, 5, 3600),
    )
    .addOption(
      intOption('--warmup <n>', 'seconds after a side loads before its window', 'CANOPY_BENCH_WARMUP', 20, 2, 600),
    )
    .addOption(
      intOption(
        '--speedup <n>',
        'every evaluation and query interval, both sides, divided by this',
        'CANOPY_BENCH_SPEEDUP',
        3,
        1,
        30,
      ),
    )
    .addOption(intOption('--head-minutes <n>', 'minutes of history in the head', 'CANOPY_BENCH_HEAD_MINUTES', 7, 7, 60))
    .action(
      async (o: {
        nodes: number;
        trees: number;
        cores: number;
        sweep?: boolean;
        seconds: number;
        warmup: number;
        speedup: number;
        headMinutes: number;
      }) => {
        await report((log) => benchRules({ ...o, sweep: o.sweep === true, warmupSeconds: o.warmup }, log));
      },
    );

  bench
    .command('actuator')
    .description(
      'ack latency of `canopy actuator --dry-run` (real Redis) under mostly duplicate notifications from concurrent keep-alive clients, against an express handler that only parses the JSON and answers 202; checks one decision per distinct firing episode (ratio: our p99/baseline p99, lower is better)',
    )
    .addOption(
      intOption(
        '--notifications <n>',
        'notifications sent to each server',
        'CANOPY_BENCH_NOTIFICATIONS',
        20_000,
        10,
        1_000_000,
      ),
    )
    .addOption(intOption('--clients <n>', 'concurrent keep-alive clients', 'CANOPY_BENCH_CLIENTS', 50, 1, 1000))
    .addOption(
      intOption(
        '--duplicates-percent <n>',
        'share of notifications that repeat an episode already sent',
        'CANOPY_BENCH_DUPLICATES_PERCENT',
        90,
        0,
        100,
      ),
    )
    .action(async (o: { notifications: number; clients: number; duplicatesPercent: number }) => {
      await report((log) => benchActuator(o, log));
    });

  bench
    .command('time-to-scale')
    .description(
      'the local stack, several runs: from the load crossing the scale-out threshold to alert, webhook, subtree ready, first RTP on a new node, targets up; against the floor those allow (ratio: end-to-end/floor, lower is better)',
    )
    .addOption(intOption('--runs <n>', 'scale-outs measured, each on a fresh stack', 'CANOPY_BENCH_RUNS', 3, 1, 20))
    .action(async (o: { runs: number }) => {
      await report((log) => benchTimeToScale(o, log), true);
    });

  bench
    .command('surge')
    .description(
      'the surge scenario on fresh local stacks, one subtree per firing episode (the policy before sizing) then level scaling: viewers refused, time to capacity, subtrees at the peak against those needed, return to baseline (ratio: refused level/episode, lower is better)',
    )
    .action(async () => {
      await report((log) => benchSurge(log), true);
    });

  bench
    .command('loss-detection')
    .description(
      "5 % loss on one egress link of a local stack with a network per node (root), at production timings: first lost packet to the loss alert notified, against scrape + evaluation + for + group_wait; the loss the metrics report against the drop rule's counter (ratio: detection/floor, lower is better, target <= 1.25)",
    )
    .action(async () => {
      await report((log) => benchLossDetection(log));
    });

  bench
    .command('first-frame')
    .description(
      "a Chromium viewer's WHEP POST to its first decoded frame, publisher keyframing only on request: keyframe requests up the tree against only a periodic request every 5 s, same run, in a network namespace (root) (ratio: p95 on/periodic, lower is better, target <= 0.3)",
    )
    .addOption(intOption('--joins <n>', 'joins measured per mode', 'CANOPY_BENCH_JOINS', 20, 1, 1_000))
    .addOption(
      new Option('--publisher <kind>', "the session's publisher: Chromium through WHIP, or the built-in encoder")
        .choices(FIRST_FRAME_PUBLISHERS)
        .env('CANOPY_BENCH_PUBLISHER')
        .default('whip'),
    )
    .action(async (o: FirstFrameOptions) => {
      await report((log) => benchFirstFrame(o, log));
    });

  bench
    .command('egress')
    .description(
      "(root: Janus runs in a network namespace) CPU seconds per viewer-minute of one egress node (node app + forwarder) serving real node-datachannel viewers of a 640x360 VP8 + Opus session, against Debian's Janus 1.1.2 streaming plugin (server offers, event_loops tuned) serving as many viewers of the same RTP in the same run; packets each viewer received of those sent (ratio: ours/Janus at the largest count, lower is better, target <= 0.8)",
    )
    .addOption(
      new Option('--viewers <list>', 'viewer counts, comma-separated, measured in this order')
        .env('CANOPY_BENCH_VIEWERS')
        .default([50, 100, 200], '50,100,200')
        .argParser(viewerCounts),
    )
    .addOption(intOption('--seconds <n>', 'measuring window per server and count', 'CANOPY_BENCH_SECONDS', 60, 1, 3600))
    .addOption(
      intOption(
        '--warmup <n>',
        'seconds after the last viewer connected, before the window',
        'CANOPY_BENCH_WARMUP',
        10,
        0,
        600,
      ),
    )
    .addOption(
      intOption(
        '--janus-event-loops <n>',
        "Janus's event_loops (media threads its handles share; 0: a thread per handle)",
        'CANOPY_BENCH_JANUS_EVENT_LOOPS',
        2,
        0,
        64,
      ),
    )
    .addOption(intOption('--rate <n>', 'viewers started per second', 'CANOPY_BENCH_RATE', 25, 1, 1000))
    .action(
      async (o: { viewers: number[]; seconds: number; warmup: number; janusEventLoops: number; rate: number }) => {
        await report(
          (log) =>
            benchEgress(
              {
                viewers: o.viewers,
                seconds: o.seconds,
                warmupSeconds: o.warmup,
                janusEventLoops: o.janusEventLoops,
                rate: o.rate,
              },
              log,
            ),
          true,
        );
      },
    );

  bench
    .command('nack-repair')
    .description(
      "(root: a network per node) the loss NACK retransmission repairs: one egress's outgoing UDP dropped on its link by an nftables rule, viewers sending NACKs and viewers not watching it at once; each group's loss per stream and the rule's drop count (ratio: video loss with NACK/without, lower is better)",
    )
    .addOption(
      intOption('--loss <percent>', "percent of the egress's outgoing UDP dropped", 'CANOPY_BENCH_LOSS', 5, 1, 50),
    )
    .addOption(intOption('--viewers <n>', 'viewers per group', 'CANOPY_BENCH_VIEWERS', 5, 1, 20))
    .addOption(intOption('--seconds <n>', 'the measuring window', 'CANOPY_BENCH_SECONDS', 30, 1, 3600))
    .action(async (o: { loss: number; viewers: number; seconds: number }) => {
      await report(
        (log) => benchNackRepair({ lossPercent: o.loss, viewers: o.viewers, seconds: o.seconds }, log),
        true,
      );
    });

  return bench;
}

/** `--viewers 50,100,200`: whole numbers 1..1000. */
function viewerCounts(raw: string): number[] {
  const parts = raw.split(',').map((p) => p.trim());
  if (!parts.every((p) => /^\d+$/.test(p) && Number(p) >= 1 && Number(p) <= 1000))
    throw new InvalidArgumentError(`expected viewer counts 1..1000, comma-separated, got ${JSON.stringify(raw)}`);
  return parts.map(Number);
}
