import type { NodeRegistry } from './registry.ts';

/** Prometheus text exposition format 0.0.4, what every Prometheus 2.x scrapes. */
export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export interface ExpositionOptions {
  /** Bound on each collector and each family, so one stuck source cannot stall the scrape. */
  collectTimeoutMs?: number;
}

interface Sample {
  value: number;
  labels: Record<string, string | number | undefined>;
  metricName?: string;
}
interface FamilyValues {
  name: string;
  help: string;
  type: string;
  values: Sample[];
}
interface Readable {
  name: string;
  get(): Promise<FamilyValues> | FamilyValues;
}

const DEFAULT_TIMEOUT_MS = 5_000;

/**
 * Renders the registry, never failing as a whole: a collector or family that
 * throws or times out is left out and counted in the failures counter, which
 * is rendered last so the scrape that saw the failure already shows it.
 */
export async function renderExposition(node: NodeRegistry, options: ExpositionOptions = {}): Promise<string> {
  const timeoutMs = options.collectTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  const fail = (name: string) => node.collectFailures.inc({ collector: name });

  await Promise.all(
    node.collectors.map((c) =>
      withTimeout(
        Promise.resolve().then(() => c.collect()),
        timeoutMs,
        c.name,
      ).catch(() => fail(c.name)),
    ),
  );

  const failuresName = (node.collectFailures as unknown as Readable).name;
  const families = node.registry
    .getMetricsAsArray()
    .map((m) => m as unknown as Readable)
    .filter((m) => m.name !== failuresName);
  const rendered = await Promise.all(
    families.map((m) =>
      withTimeout(
        Promise.resolve().then(() => m.get()),
        timeoutMs,
        m.name,
      ).then(formatFamily, () => {
        fail(m.name);
        return '';
      }),
    ),
  );
  rendered.push(formatFamily(await (node.collectFailures as unknown as Readable).get()));
  return `${rendered.filter((s) => s !== '').join('\n')}\n`;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function formatFamily(f: FamilyValues): string {
  const lines = [`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`];
  for (const s of f.values) {
    lines.push(`${s.metricName ?? f.name}${formatLabels(s.labels)} ${formatValue(s.value)}`);
  }
  return lines.join('\n');
}

function formatLabels(labels: Sample['labels']): string {
  let out = '';
  for (const key in labels) {
    const v = labels[key];
    if (v === undefined) continue;
    out += `${out === '' ? '' : ','}${key}="${escapeLabelValue(String(v))}"`;
  }
  return out === '' ? '' : `{${out}}`;
}

const LABEL_SPECIALS = /[\\"\n]/;
function escapeLabelValue(v: string): string {
  if (!LABEL_SPECIALS.test(v)) return v;
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}
