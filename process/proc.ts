import { readFileSync } from 'node:fs';

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
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}
