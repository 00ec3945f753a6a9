import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CHROMIUM } from '../test/browser.ts';
import { createNetns, netnsUnavailable } from '../test/netns.ts';
import type { BenchResult } from './result.ts';
import { percentile } from './scrape.ts';

/**
 * `canopy bench first-frame`: how long a new viewer waits for a picture when
 * the publisher keyframes only on request (a Chromium WHIP publisher, or the
 * injection's built-in encoder with `--publisher encoder`). Time from a Chromium viewer's WHEP
 * POST (through the tree's entry point) to its first decoded video frame, over
 * `joins` joins, with keyframe requests travelling up the tree (`on`) and,
 * in the same run, with only a periodic request every 5 s (`periodic`, the
 * baseline). RATIO = p95(on) / p95(periodic), lower is better (target <= 0.3).
 * The measuring runs in bench/first-frame-run.ts inside a network namespace
 * made here (needs root and Debian's chromium).
 */

export const FIRST_FRAME_MODES = ['on', 'periodic'] as const;
export type FirstFrameMode = (typeof FIRST_FRAME_MODES)[number];
export const FIRST_FRAME_PUBLISHERS = ['whip', 'encoder'] as const;
export type FirstFramePublisher = (typeof FIRST_FRAME_PUBLISHERS)[number];
/** The baseline's periodic keyframe request. */
export const PERIODIC_MS = 5_000;

const RUN = fileURLToPath(new URL('./first-frame-run.ts', import.meta.url));

export interface FirstFrameOptions {
  joins: number;
  publisher: FirstFramePublisher;
}

export async function benchFirstFrame(o: FirstFrameOptions, log: (line: string) => void): Promise<BenchResult> {
  const why = netnsUnavailable();
  if (why) throw new Error(`first-frame needs a network namespace for Chromium: ${why}`);
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/setup.sh (Debian package chromium)`);
  // An octet of its own (tests take 1 + pid % 250 from another pid): away from theirs by half the range.
  const ns = createNetns(`canopy-ff${process.pid}`, 1 + ((process.pid + 125) % 250));
  const times: Record<FirstFrameMode, number[]> = { on: [], periodic: [] };
  const failed: Record<FirstFrameMode, string[]> = { on: [], periodic: [] };
  try {
    await new Promise<void>((resolve, reject) => {
      const [cmd, ...args] = [
        ...ns.prefix,
        process.execPath,
        '--import',
        'tsx',
        RUN,
        String(o.joins),
        FIRST_FRAME_MODES.join(','),
        o.publisher,
      ];
      const p = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let rest = '';
      let stderr = '';
      p.stdout.on('data', (d: Buffer) => {
        const lines = (rest + d.toString()).split('\n');
        rest = lines.pop()!;
        for (const line of lines) {
          const [kind, mode, ...value] = line.split(' ');
          if (!FIRST_FRAME_MODES.includes(mode as FirstFrameMode)) continue;
          const m = mode as FirstFrameMode;
          if (kind === 'JOIN') times[m].push(Number(value[0]));
          else if (kind === 'FAILED') failed[m].push(value.join(' '));
          else continue;
          log(
            `  ${m}: join ${times[m].length + failed[m].length}: ${kind === 'JOIN' ? `${value[0]} ms` : value.join(' ')}`,
          );
        }
      });
      p.stderr.on('data', (d) => (stderr = (stderr + d).slice(-20_000)));
      // Each join is bounded (15 s), each tree starts within a minute.
      const t = setTimeout(() => p.kill('SIGTERM'), 2 * (90_000 + o.joins * 20_000));
      p.on('exit', (code) => {
        clearTimeout(t);
        if (code === 0) resolve();
        else reject(new Error(`first-frame-run exited with ${code}\n${stderr.split('\n').slice(-30).join('\n')}`));
      });
    });
  } finally {
    ns.remove();
  }
  log(
    o.publisher === 'whip'
      ? 'publisher: Chromium through WHIP (fake camera and microphone), keyframing only on request'
      : "publisher: the injection's built-in encoder, periodic keyframe an hour apart",
  );
  const summary: Record<FirstFrameMode, { p50: number; p95: number }> = {
    on: { p50: NaN, p95: NaN },
    periodic: { p50: NaN, p95: NaN },
  };
  for (const m of FIRST_FRAME_MODES) {
    // A join that never decoded waited at least the timeout: never dropped from the figures.
    if (failed[m].length) log(`${m}: ${failed[m].length} joins never decoded (${failed[m][0]})`);
    const all = [...times[m], ...failed[m].map(() => Number.POSITIVE_INFINITY)];
    summary[m] = { p50: percentile(all, 50), p95: percentile(all, 95) };
    log(
      `${m}: ${all.length} joins, POST to first decoded frame p50 ${summary[m].p50.toFixed(0)} ms, ` +
        `p95 ${summary[m].p95.toFixed(0)} ms (min ${Math.min(...all).toFixed(0)}, max ${Math.max(...all).toFixed(0)})`,
    );
  }
  log(`keyframe requests on / only a periodic request every ${PERIODIC_MS / 1000} s, at p95 (target <= 0.3)`);
  return { ratio: summary.on.p95 / summary.periodic.p95 };
}
