import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { exitWithPid, startTime, whenGone } from './exit-with.ts';

describe('CANOPY_EXIT_WITH_PID', () => {
  it('takes a pid, nothing else', () => {
    expect(exitWithPid(undefined)).toBeNull();
    expect(exitWithPid('')).toBeNull();
    expect(exitWithPid('4242')).toBe(4242);
    for (const bad of ['abc', '0', '-1', '12 34', '1e3', '4194305', '99999999999'])
      expect(() => exitWithPid(bad), bad).toThrow(/must be a process id/);
  });

  it('a zombie counts as gone: ended, but not reaped by its parent', async () => {
    // The background sleep's parent becomes `sleep 5` (exec keeps the pid), which never reaps it.
    const parent = spawn('sh', ['-c', 'sleep 0.2 & echo $!; exec sleep 5'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const pid = Number(await new Promise<string>((r) => parent.stdout.once('data', (b: Buffer) => r(b.toString()))));
      expect(startTime(pid)).not.toBeNull();
      await new Promise((r) => setTimeout(r, 600));
      expect(readFileSync(`/proc/${pid}/stat`, 'utf8')).toMatch(/\) Z /);
      expect(startTime(pid)).toBeNull();
    } finally {
      parent.kill('SIGKILL');
    }
  });

  it('calls back once the watched process ends, and not before', async () => {
    const child = spawn('sleep', ['30']);
    let called = 0;
    whenGone(child.pid!, () => called++);
    await new Promise((r) => setTimeout(r, 2_500));
    expect(called).toBe(0);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    await new Promise((r) => setTimeout(r, 1_500));
    expect(called).toBe(1);
  });
});
