import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { countSeries } from '../test/exposition-parser.ts';
import { startNodeExporter } from '../servers/node-exporter.ts';
import type { TargetReply, TargetRequest } from './exporter-target.ts';
import { median, timedGet } from './scrape.ts';
import type { BenchResult } from './result.ts';

// prom-client's own families (GC kinds) may gain a series during the run; the churn check is about ours.
const APP_PREFIX = 'media_tree_';

export interface ExporterBenchOptions {
  sessions: number;
  scrapes: number;
  churnCycles: number;
}

/**
 * Time per series of one egress exposition against Debian's node_exporter
 * scraped the same way in the same run, and RSS across a session churn.
 * RATIO = ours per series / node_exporter per series (lower is better).
 */
export async function benchExporter(o: ExporterBenchOptions, log: (line: string) => void): Promise<BenchResult> {
  const target = fork(fileURLToPath(new URL('./exporter-target.ts', import.meta.url)), [], {
    execArgv: ['--import', 'tsx', '--expose-gc'],
    env: { ...process.env, BENCH_SESSIONS: String(o.sessions) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ne = await startNodeExporter().catch(async (err) => {
    target.kill('SIGKILL');
    throw err;
  });
  try {
    const ready = await ask(target, undefined, 'ready');
    const ours = `http://127.0.0.1:${(ready as { port: number }).port}/metrics`;
    const theirs = `${ne.url}/metrics`;

    for (let i = 0; i < 20; i++) {
      await timedGet(ours);
      await timedGet(theirs);
    }
    const oursMs: number[] = [];
    const theirsMs: number[] = [];
    let oursBody = '';
    let theirsBody = '';
    // Alternate so both see the same machine load.
    for (let i = 0; i < o.scrapes; i++) {
      const a = await timedGet(ours);
      const b = await timedGet(theirs);
      oursMs.push(a.ms);
      theirsMs.push(b.ms);
      oursBody = a.body;
      theirsBody = b.body;
    }
    const oursSeries = countSeries(oursBody);
    const theirsSeries = countSeries(theirsBody);
    const oursPer = (median(oursMs) / oursSeries) * 1000;
    const theirsPer = (median(theirsMs) / theirsSeries) * 1000;

    const before = (await ask(target, { type: 'rss' }, 'rss')) as { rss: number; heapUsed: number };
    const chunk = Math.max(1, Math.floor(o.churnCycles / 10));
    for (let done = 0; done < o.churnCycles; done += chunk) {
      await ask(target, { type: 'churn', cycles: Math.min(chunk, o.churnCycles - done), from: done }, 'churned');
      await timedGet(ours);
    }
    const afterBody = (await timedGet(ours)).body;
    const after = (await ask(target, { type: 'rss' }, 'rss')) as { rss: number; heapUsed: number };
    const mib = (b: number) => (b / 2 ** 20).toFixed(1);

    log(`egress exposition: ${o.sessions} sessions, ${oursSeries} series`);
    log(`node_exporter exposition: ${theirsSeries} series`);
    log(
      `scrape median: ours ${median(oursMs).toFixed(3)} ms, node_exporter ${median(theirsMs).toFixed(3)} ms (${o.scrapes} scrapes each)`,
    );
    log(`per series: ours ${oursPer.toFixed(3)} us, node_exporter ${theirsPer.toFixed(3)} us (target: ours <= 2x)`);
    const appBefore = countSeries(oursBody, APP_PREFIX);
    const appAfter = countSeries(afterBody, APP_PREFIX);
    log(`churn: ${o.churnCycles} session start/stop cycles, media_tree_* series ${appBefore} -> ${appAfter}`);
    log(
      `RSS: ${mib(before.rss)} MiB before churn, ${mib(after.rss)} MiB after (${((after.rss / before.rss - 1) * 100).toFixed(1)}%, target within 10%); heap ${mib(before.heapUsed)} -> ${mib(after.heapUsed)} MiB`,
    );
    if (appAfter !== appBefore) throw new Error(`churn left ${appAfter - appBefore} extra media_tree_* series`);
    return { ratio: oursPer / theirsPer };
  } finally {
    target.kill('SIGTERM');
    await ne.child.stop();
  }
}

/** Sends `req` (if any) and waits for the reply of kind `want`. */
function ask(child: ChildProcess, req: TargetRequest | undefined, want: TargetReply['type']): Promise<TargetReply> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`exporter target: no '${want}' within 120 s`)), 120_000);
    const onMessage = (msg: TargetReply) => {
      if (msg.type === want) done(undefined, msg);
    };
    const onExit = (code: number | null) => done(new Error(`exporter target exited (${code})`));
    function done(err?: Error, msg?: TargetReply) {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(msg!);
    }
    child.on('message', onMessage);
    child.once('exit', onExit);
    if (req) child.send(req);
  });
}
