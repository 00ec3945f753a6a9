import express from 'express';
import { Gauge } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { COLLECT_FAILURES_METRIC, createEgressMetrics, metricsRouter } from './index.ts';
import { parseExposition } from '../test/exposition-parser.ts';
import { serve } from '../test/http.ts';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
});

async function scrape(router: express.Router) {
  const app = express();
  app.use(router);
  const srv = await serve(app);
  closers.push(srv.close);
  const res = await fetch(`${srv.url}/metrics`, { signal: AbortSignal.timeout(5_000) });
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text(), url: srv.url };
}

function failures(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of parseExposition(text).get(COLLECT_FAILURES_METRIC)?.samples ?? []) out[s.labels.collector!] = s.value;
  return out;
}

describe('GET /metrics', () => {
  it('answers 200 in the text format with the families a node app set', async () => {
    const m = createEgressMetrics();
    m.activeViewers.set({ session_id: 's1' }, 12);
    const r = await scrape(metricsRouter(m.node));
    expect(r.status).toBe(200);
    expect(r.type).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(parseExposition(r.text).get('media_tree_egress_active_viewers')!.samples[0]!.value).toBe(12);
    expect(failures(r.text)).toEqual({});
  });

  it('answers 200 with what it has when a collector throws, and counts the failure', async () => {
    const m = createEgressMetrics({ defaultMetrics: false });
    m.node.collectors.push({
      name: 'forwarder_stats',
      collect: () => {
        throw new Error('socket closed');
      },
    });
    m.node.collectors.push({
      name: 'pool',
      collect: () => {
        m.activeMountpoints.set(3);
      },
    });
    const first = await scrape(metricsRouter(m.node));
    expect(first.status).toBe(200);
    expect(parseExposition(first.text).get('media_tree_egress_active_mountpoints')!.samples[0]!.value).toBe(3);
    expect(failures(first.text)).toEqual({ forwarder_stats: 1 });
    const second = await scrape(metricsRouter(m.node));
    expect(failures(second.text)).toEqual({ forwarder_stats: 2 });
  });

  it('bounds a collector that never answers', async () => {
    const m = createEgressMetrics({ defaultMetrics: false });
    m.node.collectors.push({ name: 'stuck', collect: () => new Promise<void>(() => {}) });
    const started = Date.now();
    const r = await scrape(metricsRouter(m.node, { collectTimeoutMs: 100 }));
    expect(r.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(failures(r.text)).toEqual({ stuck: 1 });
    expect(parseExposition(r.text).has('media_tree_egress_port_pool_allocated')).toBe(true);
  });

  it('leaves out a family whose own collect throws, keeps the others', async () => {
    const m = createEgressMetrics({ defaultMetrics: false });
    new Gauge({
      name: 'media_tree_test_broken',
      help: 'A family whose collect callback throws',
      registers: [m.node.registry],
      collect() {
        throw new Error('boom');
      },
    });
    const r = await scrape(metricsRouter(m.node));
    expect(r.status).toBe(200);
    const f = parseExposition(r.text);
    expect(f.has('media_tree_test_broken')).toBe(false);
    expect(f.has('media_tree_egress_active_viewers')).toBe(true);
    expect(failures(r.text)).toEqual({ media_tree_test_broken: 1 });
  });

  it('GET /healthz answers ok', async () => {
    const m = createEgressMetrics({ defaultMetrics: false });
    const r = await scrape(metricsRouter(m.node));
    const h = await fetch(`${r.url}/healthz`);
    expect(h.status).toBe(200);
    expect(await h.text()).toBe('ok\n');
  });
});
