import { procStat } from './proc.ts';

/** Linux's highest possible pid (pid_max can be raised to 2^22, no further). */
const PID_MAX = 4_194_304;

/**
 * CANOPY_EXIT_WITH_PID: the process whose end stops a node app. The local
 * stack sets it, so the actuator's subtrees (detached on purpose: they outlive
 * an actuator restart) still go when the stack is killed outright.
 */
export function exitWithPid(value: string | undefined): number | null {
  if (value === undefined || value === '') return null;
  const pid = /^[1-9][0-9]{0,6}$/.test(value) ? Number(value) : NaN;
  if (!(pid <= PID_MAX))
    throw new Error(`CANOPY_EXIT_WITH_PID must be a process id (1..${PID_MAX}), got ${JSON.stringify(value)}`);
  return pid;
}

/**
 * Calls `gone` once process `pid` has ended: no such process, a zombie nobody
 * reaped, or its pid taken by a newer process (checked every second; the
 * timer never keeps this process alive).
 */
export function whenGone(pid: number, gone: () => void): void {
  const started = startTime(pid);
  const timer = setInterval(() => {
    const now = startTime(pid);
    if (now !== null && now === started) return;
    clearInterval(timer);
    gone();
  }, 1_000);
  timer.unref();
}

/** The process's start time from /proc/<pid>/stat; null when it is gone or a zombie. */
export function startTime(pid: number): string | null {
  const fields = procStat(pid);
  return !fields || fields[0] === 'Z' ? null : (fields[19] ?? null);
}
