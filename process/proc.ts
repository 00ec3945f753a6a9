import { readdirSync, readFileSync } from 'node:fs';

/**
 * The fields of /proc/<pid>/stat after "pid (comm) ", so index i is field i + 3
 * of proc(5): [0] state, [1] ppid, [11] utime, [12] stime, [19] starttime.
 * The command name may hold spaces and parentheses, hence the last ")".
 * Null when there is no such process.
 */
export function procStat(pid: number): string[] | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  return statFields(stat);
}

/** The fields of a /proc/<pid>/stat line after "pid (comm) " (see procStat). */
export function statFields(stat: string): string[] {
  const close = stat.lastIndexOf(')');
  if (close < 0) throw new Error(`not a /proc stat line: ${stat.slice(0, 80)}`);
  return stat
    .slice(close + 2)
    .trim()
    .split(' ');
}

/**
 * CPU seconds in stat fields: user + system of the process (all its
 * threads), plus, with `reaped`, those of the children it has waited for
 * (cutime, cstime: a child that ended keeps counting once its parent reaped it).
 */
export function statCpuSeconds(f: string[], reaped = false): number {
  const ticks = [11, 12, ...(reaped ? [13, 14] : [])].map((i) => Number(f[i]));
  if (ticks.some((t) => !Number.isFinite(t) || t < 0)) throw new Error('a /proc stat line without CPU times');
  return ticks.reduce((a, b) => a + b, 0) / CLOCK_TICKS;
}

/** User + system CPU seconds of a process so far, from /proc. */
export function cpuSeconds(pid: number): number {
  const f = procStat(pid);
  if (!f) throw new Error(`process ${pid} is gone`);
  return statCpuSeconds(f);
}
const CLOCK_TICKS = 100; // USER_HZ on Linux

/**
 * CPU seconds of a process and everything it started: its own, its reaped
 * children's, and every live descendant's. Differences of two readings are
 * what the whole tree used in between (a child ending in between moves its
 * time into its parent's reaped share).
 */
export function treeCpuSeconds(pid: number): number {
  return Object.values(treeCpuByName(pid)).reduce((a, b) => a + b, 0);
}

/** treeCpuSeconds by process name (the command's base name): where a tree's CPU goes. */
export function treeCpuByName(pid: number): Record<string, number> {
  const f = procStat(pid);
  if (!f) throw new Error(`process ${pid} is gone`);
  const out: Record<string, number> = {};
  const add = (p: number, fields: string[]) => {
    const name = cmdline(p).split(' ')[0]?.split('/').at(-1) || String(p);
    out[name] = (out[name] ?? 0) + statCpuSeconds(fields, true);
  };
  add(pid, f);
  for (const d of descendantsOf(pid)) {
    const g = procStat(d);
    if (g) add(d, g);
  }
  return out;
}

/** Every live descendant of `pid` (detached ones included: they keep their parent until it dies). */
export function descendantsOf(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const ppid = Number(procStat(Number(d))?.[1]); // NaN when gone meanwhile
    children.set(ppid, [...(children.get(ppid) ?? []), Number(d)]);
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

/** The command line of `pid`, arguments joined by spaces; empty when it is gone. */
export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

/** UDP datagrams a network namespace's sockets dropped: InErrors and, among them, RcvbufErrors (a full receive buffer); SndbufErrors (a full send buffer). */
export interface UdpDrops {
  inErrors: number;
  rcvbufErrors: number;
  sndbufErrors: number;
}

/** The `Udp:` counters of a /proc/net/snmp text (a header line, then a value line). */
export function udpDrops(snmp: string): UdpDrops {
  const [head, values] = snmp.split('\n').filter((l) => l.startsWith('Udp:'));
  if (!head || !values) throw new Error('no Udp: lines in /proc/net/snmp');
  const names = head.split(/\s+/).slice(1);
  const nums = values.split(/\s+/).slice(1).map(Number);
  const get = (k: string) => {
    const v = nums[names.indexOf(k)];
    if (v === undefined || !Number.isFinite(v)) throw new Error(`/proc/net/snmp has no Udp ${k}`);
    return v;
  };
  return { inErrors: get('InErrors'), rcvbufErrors: get('RcvbufErrors'), sndbufErrors: get('SndbufErrors') };
}
