import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { listensOn } from './ports.ts';
import { waitUntil } from './wait.ts';

export interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  /** The last lines the process wrote, for error messages. */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  args?: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Resolves true once the process serves; polled until `readyTimeoutMs`, given what it has written so far. */
  ready?: (output: () => string) => Promise<boolean> | boolean;
  readyTimeoutMs?: number;
  /** The TCP port the process listens on: it is ready only once it holds that port itself. */
  port?: number;
  /** Give the child a stdin pipe (`process.stdin`) instead of none, for commands written to it. */
  stdin?: boolean;
}

const OUTPUT_KEEP = 64 * 1024;
const running = new Set<ChildProcess>();

// Children die with us, even when we leave through an uncaught error.
process.once('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

// And when we are killed outright (no exit handler runs): util-linux's setpriv
// sets the parent-death signal and execs the command, so the pid is the command's.
const SETPRIV = '/usr/bin/setpriv';
const withParentDeath = existsSync(SETPRIV);

/** Starts a real component as a child process and waits until it is ready. */
export async function startChild(name: string, command: string, options: StartOptions = {}): Promise<Child> {
  const [file, argv] = withParentDeath
    ? [SETPRIV, ['--pdeathsig', 'SIGKILL', '--', command, ...(options.args ?? [])]]
    : [command, options.args ?? []];
  const proc = spawn(file, argv, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  running.add(proc);
  let out = '';
  const keep = (chunk: Buffer) => {
    out = (out + chunk.toString('utf8')).slice(-OUTPUT_KEEP);
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => {
    proc.once('exit', () => {
      running.delete(proc);
      resolve();
    });
  });
  let spawnError: Error | undefined;
  proc.once('error', (err) => {
    spawnError = err;
    running.delete(proc);
  });

  const child: Child = {
    name,
    process: proc,
    output: () => out,
    async stop(graceMs = 5_000) {
      if (proc.exitCode !== null || proc.signalCode !== null || spawnError) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };

  if (options.ready) {
    const ready = options.ready;
    // An exit before ready is final: no waiting out the timeout (a server
    // that lost its port is started again on another at once).
    const ended = new Promise<never>((_, reject) => {
      proc.once('exit', (code, signal) =>
        reject(new Error(`${name} exited with ${code !== null ? `code ${code}` : signal}`)),
      );
      proc.once('error', (err) => reject(new Error(`cannot start ${command}: ${err.message}`)));
    });
    ended.catch(() => {});
    let settled = false;
    try {
      await Promise.race([
        waitUntil(
          `${name} to become ready`,
          async () => {
            if (settled) return true;
            if (!(await ready(() => out))) return false;
            return options.port === undefined || listensOn(proc.pid!, options.port);
          },
          { timeoutMs: options.readyTimeoutMs ?? 20_000 },
        ),
        ended,
      ]);
    } catch (err) {
      await child.stop(1_000);
      const tail = out.trim().split('\n').slice(-10).join('\n');
      throw new Error(`${(err as Error).message}${tail ? `\n--- ${name} output ---\n${tail}` : ''}`);
    } finally {
      settled = true;
    }
  }
  return child;
}
