import { instantQuery } from '../servers/prometheus.ts';
import { median } from './scrape.ts';

export interface SeriesFloor {
  /** Distinct raw series the selectors touch. */
  series: number;
  /** Reads the floor is made of: selectors whose series no wider read covered. */
  reads: string[];
  /** Series read more than once because a read's set only partly overlapped an earlier one. */
  overlap: number;
  /** Median over rounds of Prometheus' evaluation time of all reads, seconds. */
  seconds: number;
}

const RANGE = /^(.*)\[(\d+)([smhd])\]$/;
const UNIT: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/**
 * What any evaluation of a rule pack must do at least: read each distinct raw
 * series its selectors touch once, over the widest window any selector reads
 * it with. Series are found through the series API, so three selectors over
 * the same series count once; reads go widest window first, and a selector
 * whose series are all covered is skipped. Each read is aggregated to one
 * number so the API's output costs nothing.
 */
export async function seriesFloor(url: string, selectors: string[], rounds: number): Promise<SeriesFloor> {
  const parsed = await Promise.all(
    selectors.map(async (text) => {
      const m = RANGE.exec(text);
      const vector = m ? m[1]! : text;
      const rangeSeconds = m ? Number(m[2]) * UNIT[m[3]!]! : 0;
      return { text, vector, rangeSeconds, keys: await seriesKeys(url, vector) };
    }),
  );
  parsed.sort((a, b) => b.rangeSeconds - a.rangeSeconds || b.keys.length - a.keys.length);
  const seen = new Set<string>();
  const reads: string[] = [];
  let overlap = 0;
  for (const p of parsed) {
    const fresh = p.keys.filter((k) => !seen.has(k));
    if (fresh.length === 0) continue;
    overlap += p.keys.length - fresh.length;
    for (const k of fresh) seen.add(k);
    reads.push(p.rangeSeconds > 0 ? `count(count_over_time(${p.text}))` : `count(${p.vector})`);
  }
  const totals: number[] = [];
  for (let round = 0; round < rounds + 1; round++) {
    let seconds = 0;
    for (const q of reads) seconds += evalTotalTime(await instantQuery(url, q, { stats: 'all' }), q);
    // The first round warms caches, as a rule group's first evaluation does.
    if (round > 0) totals.push(seconds);
  }
  return { series: seen.size, reads, overlap, seconds: median(totals) };
}

async function seriesKeys(url: string, selector: string): Promise<string[]> {
  const now = Date.now() / 1000;
  // Five minutes back: under load the newest remote-written step can be a minute old.
  const body = new URLSearchParams({ 'match[]': selector, start: String(now - 300), end: String(now) });
  const res = await fetch(`${url}/api/v1/series`, { method: 'POST', body, signal: AbortSignal.timeout(30_000) });
  const json = (await res.json()) as { status: string; error?: string; data: Array<Record<string, string>> };
  if (json.status !== 'success') throw new Error(`series query failed: ${json.error}: ${selector}`);
  return json.data.map((labels) =>
    Object.keys(labels)
      .sort()
      .map((k) => `${k}=${labels[k]}`)
      .join(','),
  );
}

/** Prometheus' own evaluation time of a query asked with stats=all. */
export function evalTotalTime(r: { stats?: unknown }, what: string): number {
  const took = (r.stats as { timings?: { evalTotalTime?: number } } | undefined)?.timings?.evalTotalTime;
  if (typeof took !== 'number') throw new Error(`no query stats for ${what}`);
  return took;
}
