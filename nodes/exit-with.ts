/**
 * CANOPY_EXIT_WITH_PID: the process whose end stops a node app. The local
 * stack sets it, so the actuator's subtrees (detached on purpose: they outlive
 * an actuator restart) still go when the stack is killed outright.
 */
export function exitWithPid(value: string | undefined): number | null {
  if (value === undefined || value === '') return null;
  if (!/^[1-9][0-9]{0,9}$/.test(value)) throw new Error(`CANOPY_EXIT_WITH_PID must be a process id, got ${JSON.stringify(value)}`);
  return Number(value);
}

/** Calls `gone` once `pid` no longer exists (checked every second; never keeps the process alive). */
export function whenGone(pid: number, gone: () => void): void {
  const timer = setInterval(() => {
    if (exists(pid)) return;
    clearInterval(timer);
    gone();
  }, 1_000);
  timer.unref();
}

function exists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
