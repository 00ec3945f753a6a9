import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { actuatorFamilies } from '../exporters/index.ts';
import { evalJsonnet } from '../rules/jsonnet.ts';
import { rangeQuery } from '../servers/prometheus.ts';
import type { ScenarioReport } from './scenario.ts';

export interface Line {
  name: string;
  points: Array<[number, number]>;
}
export interface Panel {
  title: string;
  unit: string;
  lines: Line[];
}

/** What the report plots, from the rule pack's recorded series (names from their owner). */
function panelQueries(): Array<{
  title: string;
  unit: string;
  queries: Array<{ name: string; expr: string; by?: string }>;
}> {
  const r = evalJsonnet("(import 'mixin.libsonnet').recorded") as Record<string, string>;
  return [
    { title: 'Viewers', unit: '', queries: [{ name: 'viewers', expr: `sum(${r.treeViewers})` }] },
    { title: 'Egress nodes up', unit: '', queries: [{ name: 'egress nodes', expr: `sum(${r.treeEgressUp})` }] },
    {
      title: 'Port-pool utilisation: fullest node and whole tree',
      unit: '%',
      queries: [
        { name: 'max pool', expr: `max(${r.treePortPool})` },
        { name: 'tree', expr: `100 * max(${r.treePortsUtilisation})` },
      ],
    },
    {
      // What the sizing asks for against what the actuator has.
      title: 'Subtrees: desired (rules) and actual (actuator)',
      unit: '',
      queries: [
        { name: 'desired', expr: `max(${r.treeDesiredSubtrees})` },
        { name: 'actual', expr: `sum(${actuatorFamilies.subtrees.name})` },
      ],
    },
    {
      title: 'Scale alerts firing and actions done',
      unit: '',
      queries: [
        {
          name: 'alert',
          expr: 'count by (alertname) (ALERTS{alertname=~"MediaTreeScale.*", alertstate="firing"})',
          by: 'alertname',
        },
        { name: 'actions', expr: `sum(${actuatorFamilies.actions.name}{outcome="succeeded"})` },
      ],
    },
  ];
}

/** Range queries over the run, one point a second. */
export async function collectPanels(prometheusUrl: string, startMs: number, endMs: number): Promise<Panel[]> {
  const start = Math.floor(startMs / 1000);
  const end = Math.ceil(endMs / 1000);
  const panels: Panel[] = [];
  for (const p of panelQueries()) {
    const lines: Line[] = [];
    for (const q of p.queries) {
      for (const s of await rangeQuery(prometheusUrl, q.expr, start, end, 1)) {
        lines.push({
          name: q.by ? (s.metric[q.by] ?? q.name) : q.name,
          points: s.values.map(([t, v]) => [t * 1000, Number(v)]),
        });
      }
    }
    panels.push({ title: p.title, unit: p.unit, lines });
  }
  return panels;
}

const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e'];
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** A plain SVG: one row a panel, time in seconds since the start, events as dashed lines. */
export function chartSvg(
  panels: Panel[],
  events: Array<{ at: number; label: string }>,
  startMs: number,
  endMs: number,
): string {
  const W = 900;
  const rowH = 150;
  const left = 60;
  const right = 20;
  const plotW = W - left - right;
  const H = panels.length * rowH + 40;
  const x = (t: number) =>
    left + ((Math.min(Math.max(t, startMs), endMs) - startMs) / Math.max(1, endMs - startMs)) * plotW;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
  ];
  panels.forEach((p, i) => {
    const top = 20 + i * rowH;
    const h = rowH - 40;
    const max = Math.max(1, ...p.lines.flatMap((l) => l.points.map(([, v]) => v)));
    const y = (v: number) => top + h - (v / max) * h;
    out.push(`<text x="${left}" y="${top - 4}" font-weight="bold">${esc(p.title)}</text>`);
    out.push(`<line x1="${left}" y1="${top + h}" x2="${left + plotW}" y2="${top + h}" stroke="#888"/>`);
    out.push(`<line x1="${left}" y1="${top}" x2="${left}" y2="${top + h}" stroke="#888"/>`);
    out.push(`<text x="${left - 6}" y="${top + 4}" text-anchor="end">${+max.toFixed(1)}${esc(p.unit)}</text>`);
    out.push(`<text x="${left - 6}" y="${top + h}" text-anchor="end">0</text>`);
    p.lines.forEach((l, j) => {
      const colour = COLOURS[j % COLOURS.length]!;
      const pts = l.points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
      out.push(
        `<polyline data-series="${esc(l.name)}" fill="none" stroke="${colour}" stroke-width="1.5" points="${pts}"/>`,
      );
      out.push(
        `<text x="${left + plotW - 4}" y="${top + 12 + j * 12}" text-anchor="end" fill="${colour}">${esc(l.name)}</text>`,
      );
    });
    for (const e of events)
      out.push(
        `<line x1="${x(e.at).toFixed(1)}" y1="${top}" x2="${x(e.at).toFixed(1)}" y2="${top + h}" stroke="#aaa" stroke-dasharray="3,3"/>`,
      );
  });
  // About six ticks, on multiples of 5 s.
  const axisY = H - 12;
  const tick = Math.max(5, Math.ceil((endMs - startMs) / 1000 / 6 / 5) * 5);
  for (let s = 0; s <= (endMs - startMs) / 1000; s += tick) {
    out.push(`<text x="${x(startMs + s * 1000).toFixed(1)}" y="${axisY}" text-anchor="middle">${s}s</text>`);
  }
  out.push('</svg>');
  return out.join('\n');
}

/** The text summary: every event and the times from the start to each milestone. */
export function summaryText(scenario: string, run: ScenarioReport, startMs: number, endMs: number): string {
  const t = (ms: number) => `+${((ms - startMs) / 1000).toFixed(1)} s`;
  const lines = [`scenario: ${scenario}`, `duration: ${((endMs - startMs) / 1000).toFixed(1)} s`, ''];
  for (const [alert, at] of Object.entries(run.firing)) lines.push(`${alert} first firing: ${t(at)}`);
  lines.push(
    `subtrees added: ${
      Object.entries(run.subtrees)
        .map(([s, nodes]) => `${s} (${nodes.join(', ')})`)
        .join('; ') || 'none'
    }`,
  );
  lines.push(
    `viewers placed: ${Object.entries(run.placed)
      .map(([n, c]) => `${n}=${c}`)
      .join(' ')}`,
  );
  lines.push(`max pool utilisation after each viewers step: ${run.maxPool.map((v) => v.toFixed(0)).join(', ')} %`);
  for (const k of ['audio', 'video'] as const) {
    const m = run.media[k];
    const pct = m.expected > 0 ? ((100 * m.lost) / m.expected).toFixed(3) : '0.000';
    lines.push(`viewers received (${k}): ${m.packets} RTP packets, ${m.lost} lost (${pct} %)`);
  }
  if (run.endedByServer) lines.push(`viewers ended by their egress node: ${run.endedByServer}`);
  if (run.surge) {
    const s = run.surge;
    lines.push(
      `surge: ${s.refusedViewers} viewers refused at first (${s.refusals} refusals), ${s.servedAfterRefusal} of them served on a retry; ${s.setupFailures} WebRTC set-ups failed and were tried again`,
      `surge: at most ${Math.max(0, ...s.timeline.map((x) => x.subtrees))} subtrees, ${Math.max(0, ...s.timeline.map((x) => x.ports))} egress ports`,
    );
  }
  lines.push('', 'events:');
  for (const e of run.events) lines.push(`  ${t(e.at)}  ${e.what}`);
  return `${lines.join('\n')}\n`;
}

/** Writes chart.svg and summary.txt into `dir`; returns their paths. */
export async function writeRunReport(
  prometheusUrl: string,
  scenario: string,
  run: ScenarioReport,
  startMs: number,
  endMs: number,
  dir: string,
): Promise<{ chart: string; summary: string; panels: Panel[] }> {
  mkdirSync(dir, { recursive: true });
  const panels = await collectPanels(prometheusUrl, startMs, endMs);
  const events = Object.entries(run.firing).map(([label, at]) => ({ label, at }));
  const chart = join(dir, 'chart.svg');
  const summary = join(dir, 'summary.txt');
  writeFileSync(chart, chartSvg(panels, events, startMs, endMs));
  writeFileSync(summary, summaryText(scenario, run, startMs, endMs));
  return { chart, summary, panels };
}
