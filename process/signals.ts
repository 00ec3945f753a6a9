/** True while a process with this pid exists (a zombie not yet reaped counts). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Signals a process group (a detached child leads its own), or the process alone. */
export function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      /* already gone */
    }
  }
}

/**
 * SIGTERM to each process group, SIGKILL to those still alive after `graceMs`.
 * `pids` is asked again while waiting: groups that appear meanwhile go too.
 */
export async function stopGroups(pids: () => number[], graceMs = 10_000): Promise<void> {
  for (const p of pids()) killGroup(p, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (pids().some(processAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  for (const p of pids()) if (processAlive(p)) killGroup(p, 'SIGKILL');
}
