/** A small reader of the text exposition format, for tests and benchmarks. */
export interface ParsedSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
export interface ParsedFamily {
  name: string;
  help?: string;
  type?: string;
  samples: ParsedSample[];
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?/gy;
const HISTOGRAM_SUFFIX = /_(bucket|sum|count)$/;

export function parseExposition(text: string): Map<string, ParsedFamily> {
  const families = new Map<string, ParsedFamily>();
  const family = (name: string) => {
    let f = families.get(name);
    if (!f) {
      f = { name, samples: [] };
      families.set(name, f);
    }
    return f;
  };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta) {
      const f = family(meta[2]!);
      if (meta[1] === 'HELP') f.help = meta[3]!.replace(/\\n/g, '\n').replace(/\\\\/g, '\\');
      else f.type = meta[3]!;
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    if (m[2]) {
      LABEL.lastIndex = 0;
      for (let lm = LABEL.exec(m[2]); lm !== null; lm = LABEL.exec(m[2])) {
        labels[lm[1]!] = lm[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      }
    }
    const sampleName = m[1]!;
    const owner =
      families.has(sampleName) || !HISTOGRAM_SUFFIX.test(sampleName)
        ? sampleName
        : sampleName.replace(HISTOGRAM_SUFFIX, '');
    family(owner).samples.push({ name: sampleName, labels, value: parseValue(m[3]!) });
  }
  return families;
}

/** One sample of `name{labels}` from an exposition; labels must all match. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const family of parseExposition(text).values())
    for (const s of family.samples)
      if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) return s.value;
  return undefined;
}

/** Number of sample lines (the series one scrape ingests), optionally only those whose name starts with `prefix`. */
export function countSeries(text: string, prefix = ''): number {
  let n = 0;
  for (const line of text.split('\n')) if (line !== '' && !line.startsWith('#') && line.startsWith(prefix)) n++;
  return n;
}

function parseValue(v: string): number {
  if (v === '+Inf') return Infinity;
  if (v === '-Inf') return -Infinity;
  return Number(v);
}
