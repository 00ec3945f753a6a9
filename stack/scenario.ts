import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { z } from 'zod';
import { duration } from '../process/duration.ts';
import { actuatorKeys, ID_PATTERN, keys } from '../topology/index.ts';
import { instantQuery } from '../servers/prometheus.ts';
import type { Stack } from './stack.ts';

export const SCENARIOS_DIR = fileURLToPath(new URL('./scenarios/', import.meta.url));

const step = z.union([
  z
    .object({
      'start-session': z
        .object({ id: z.string().regex(ID_PATTERN, 'a topology id (lower-case letters, digits, -)') })
        .strict(),
    })
    .strict(),
  z
    .object({
      viewers: z
        .object({
          count: z.number().int().min(0).max(10_000),
          /** Viewers joined or left per second. */
          rate: z.number().positive().max(1_000).default(10),
        })
        .strict(),
    })
    .strict(),
  z
    .object({
      'wait-for': z.union([
        z
          .object({
            alert: z.enum(['MediaTreeScaleOut', 'MediaTreeScaleIn']),
            state: z.enum(['firing', 'inactive']).default('firing'),
            timeout: duration.default(120_000),
          })
          .strict(),
        z.object({ subtrees: z.number().int().min(0).max(100), timeout: duration.default(120_000) }).strict(),
      ]),
    })
    .strict(),
  z.object({ sleep: duration }).strict(),
]);

export const scenarioSchema = z
  .object({
    name: z.string().min(1),
    description: z.string().optional(),
    steps: z.array(step).min(1),
  })
  .strict();
export type Scenario = z.infer<typeof scenarioSchema>;
type Step = Scenario['steps'][number];

/** Reads and validates a scenario: a name in stack/scenarios/ or a path to a YAML file. */
export function loadScenario(nameOrPath: string): Scenario {
  const path =
    nameOrPath.endsWith('.yaml') || nameOrPath.endsWith('.yml') || nameOrPath.includes('/')
      ? nameOrPath
      : join(SCENARIOS_DIR, `${nameOrPath}.yaml`);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new Error(`scenario ${nameOrPath}: no such file ${path}`);
  }
  return parseScenario(text, path);
}

export function parseScenario(text: string, where = 'scenario'): Scenario {
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (err) {
    throw new Error(`${where}: not YAML: ${(err as Error).message}`);
  }
  const r = scenarioSchema.safeParse(raw);
  if (!r.success) {
    const why = r.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ');
    throw new Error(`${where}: invalid scenario: ${why}`);
  }
  return r.data;
}

export interface ScenarioEvent {
  at: number;
  what: string;
}

/** What a run saw: the e2e test's evidence, the CLI's summary. */
export interface ScenarioReport {
  events: ScenarioEvent[];
  /** Alert name -> first time seen firing (ms since epoch). */
  firing: Record<string, number>;
  /** Every subtree the actuator recorded during the run, with its nodes. */
  subtrees: Record<string, string[]>;
  /** Node ids of subtrees that Prometheus scraped with up == 1. */
  scrapedUp: string[];
  /** Viewer placements: node id -> how many viewers were ever placed there. */
  placed: Record<string, number>;
  /** Max port-pool utilisation (the recorded series) sampled after each viewers step. */
  maxPool: number[];
}

interface Viewer {
  node: string;
  location: string;
}

interface EgressInfo {
  id: string;
  url: string;
  draining: boolean;
}

/** Runs a scenario against a started stack. Throws when a wait-for times out. */
export async function runScenario(
  stack: Stack,
  scenario: Scenario,
  log: (line: string) => void = () => {},
): Promise<ScenarioReport> {
  const report: ScenarioReport = { events: [], firing: {}, subtrees: {}, scrapedUp: [], placed: {}, maxPool: [] };
  const event = (what: string) => {
    report.events.push({ at: Date.now(), what });
    log(what);
  };
  const injection = stack.nodes.find((n) => n.type === 'injection')!;
  const sessions: string[] = [];
  const viewers: Viewer[] = [];
  // One local receiver for every viewer: the RTP a viewer gets lands here.
  const audio = await bindUdp();
  const video = await bindUdp();
  let received = 0;
  for (const s of [audio, video]) s.on('message', () => received++);

  const egressNodes = async (): Promise<EgressInfo[]> => {
    const ids = (await stack.redis.smembers(keys.nodes(stack.tree, 'egress'))).sort();
    const out: EgressInfo[] = [];
    for (const id of ids) {
      const h = await stack.redis.hgetall(keys.node(id));
      if (!h.httpPort) continue;
      out.push({ id, url: `http://${h.host ?? '127.0.0.1'}:${h.httpPort}`, draining: h.draining === '1' });
    }
    return out;
  };

  const recordSubtrees = async (): Promise<number> => {
    const all = await stack.redis.hgetall(actuatorKeys.subtrees(stack.tree));
    for (const [id, v] of Object.entries(all)) {
      try {
        report.subtrees[id] = (JSON.parse(v) as { nodes: string[] }).nodes;
      } catch {
        /* recorded by the actuator: skip what we cannot read */
      }
    }
    return Object.keys(all).length;
  };

  const samplePool = async () => {
    // Right after start Prometheus may not have scraped every egress node yet: retry briefly.
    const deadline = Date.now() + 10_000;
    for (;;) {
      const r = await instantQuery(
        stack.urls.prometheus,
        `max(media_tree_egress_port_pool_utilization_percent{tree_id="${stack.tree}"})`,
      ).catch((err: Error) => {
        log(`pool query: ${err.message}`);
        return null;
      });
      const v = Number(r?.result[0]?.value[1]);
      if (Number.isFinite(v)) {
        report.maxPool.push(v);
        return;
      }
      if (Date.now() > deadline) return;
      await new Promise((res) => setTimeout(res, 500));
    }
  };

  const addViewer = async (): Promise<void> => {
    const session = sessions[viewers.length % Math.max(1, sessions.length)];
    if (!session) throw new Error('viewers: start a session first (start-session)');
    const deadline = Date.now() + 30_000;
    for (;;) {
      const count = (id: string) => viewers.filter((v) => v.node === id).length;
      // Least-loaded first, as a WHEP load balancer would place them.
      const candidates = (await egressNodes())
        .filter((n) => !n.draining)
        .sort((a, b) => count(a.id) - count(b.id) || a.id.localeCompare(b.id));
      for (const n of candidates) {
        const res = await fetch(`${n.url}/whep/${session}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ host: '127.0.0.1', audioPort: audio.address().port, videoPort: video.address().port }),
          signal: AbortSignal.timeout(5_000),
        }).catch(() => null);
        if (res?.status === 201) {
          viewers.push({ node: n.id, location: `${n.url}${res.headers.get('location')}` });
          report.placed[n.id] = (report.placed[n.id] ?? 0) + 1;
          await res.arrayBuffer();
          return;
        }
        await res?.arrayBuffer();
      }
      if (Date.now() > deadline)
        throw new Error('viewers: no egress node took a viewer within 30 s (pools full, or the session not yet there)');
      await new Promise((r) => setTimeout(r, 500));
    }
  };

  // Viewers leave the fullest node first, so as the load balancer places the
  // rest on the new nodes, the fullest pool falls.
  const removeViewer = async (): Promise<void> => {
    const count = (id: string) => viewers.filter((x) => x.node === id).length;
    let at = viewers.length - 1;
    for (let i = viewers.length - 1; i >= 0; i--) if (count(viewers[i]!.node) > count(viewers[at]!.node)) at = i;
    const [v] = viewers.splice(at, 1) as [Viewer];
    const res = await fetch(v.location, { method: 'DELETE', signal: AbortSignal.timeout(5_000) }).catch(() => null);
    await res?.arrayBuffer();
  };

  const runStep = async (s: Step): Promise<void> => {
    if ('start-session' in s) {
      const id = s['start-session'].id;
      const ssrc = 100_000 + sessions.length * 2;
      const res = await fetch(`${injection.url}/sessions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ sessionId: id, audioSsrc: ssrc, videoSsrc: ssrc + 1 }),
        signal: AbortSignal.timeout(5_000),
      });
      if (res.status !== 201)
        throw new Error(`start-session ${id}: injection answered ${res.status} ${await res.text()}`);
      sessions.push(id);
      event(`session ${id} started`);
    } else if ('viewers' in s) {
      const { count, rate } = s.viewers;
      const gap = 1_000 / rate;
      while (viewers.length !== count) {
        if (viewers.length < count) await addViewer();
        else await removeViewer();
        await new Promise((r) => setTimeout(r, gap));
      }
      const byNode: Record<string, number> = {};
      for (const v of viewers) byNode[v.node] = (byNode[v.node] ?? 0) + 1;
      await new Promise((r) => setTimeout(r, 2_000)); // a scrape or two
      await samplePool();
      event(
        `viewers: ${count} (${
          Object.entries(byNode)
            .map(([k, v]) => `${k}=${v}`)
            .join(' ') || 'none'
        }); max pool ${report.maxPool.at(-1)?.toFixed(0) ?? '?'}%`,
      );
    } else if ('wait-for' in s) {
      const w = s['wait-for'];
      const deadline = Date.now() + w.timeout;
      if ('alert' in w) {
        for (;;) {
          const r = await instantQuery(
            stack.urls.prometheus,
            `ALERTS{alertname="${w.alert}", alertstate="firing", tree_id="${stack.tree}"}`,
          ).catch(() => null);
          const firing = (r?.result.length ?? 0) > 0;
          if (firing && !report.firing[w.alert]) report.firing[w.alert] = Date.now();
          if (firing === (w.state === 'firing')) break;
          if (Date.now() > deadline) throw new Error(`wait-for: ${w.alert} not ${w.state} after ${w.timeout} ms`);
          await new Promise((r) => setTimeout(r, 500));
        }
        event(`${w.alert} ${w.state}`);
      } else {
        // A subtree counts once the actuator recorded it and, for a scale-out, Prometheus scrapes every node of it.
        for (;;) {
          const n = await recordSubtrees().catch(() => -1);
          if (n === w.subtrees) {
            if (n === 0) break;
            const current = Object.values(await stack.redis.hgetall(actuatorKeys.subtrees(stack.tree))).flatMap(
              (v) => (JSON.parse(v) as { nodes: string[] }).nodes,
            );
            const r = await instantQuery(
              stack.urls.prometheus,
              `up{job="media-tree-egress", tree_id="${stack.tree}"} == 1`,
            ).catch(() => null);
            const up = new Set((r?.result ?? []).map((x) => x.metric.node_id));
            if (current.every((id) => up.has(id))) {
              for (const id of current) if (!report.scrapedUp.includes(id)) report.scrapedUp.push(id);
              break;
            }
          }
          if (Date.now() > deadline)
            throw new Error(`wait-for: ${w.subtrees} subtree(s) (scraped) not reached after ${w.timeout} ms`);
          await new Promise((r) => setTimeout(r, 500));
        }
        event(`subtrees: ${w.subtrees}`);
      }
    } else if ('sleep' in s) {
      await new Promise((r) => setTimeout(r, s.sleep));
    }
  };

  try {
    event(`scenario ${scenario.name}: ${scenario.steps.length} steps`);
    for (const s of scenario.steps) await runStep(s);
    event(`scenario ${scenario.name} done (viewers received ${received} RTP packets)`);
  } finally {
    for (const s of [audio, video]) s.close();
  }
  return report;
}

function bindUdp(): Promise<Socket & { address(): { port: number } }> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => resolve(s as Socket & { address(): { port: number } }));
  });
}
