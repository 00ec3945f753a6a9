import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createConnection } from 'node:net';
import { fileURLToPath } from 'node:url';

/**
 * Runs the forwarder binary as a supervised child of a node app: started with
 * --die-with-parent (a SIGKILLed app leaves nothing behind), restarted with
 * backoff when it dies, stopped with SIGTERM. Lives beside the binary, where
 * node apps may import it; servers/forwarder.ts starts the same binary for
 * tests and benches.
 */

export const FORWARDER_BIN = fileURLToPath(new URL('./build/media-tree-forwarder', import.meta.url));
/** Built beside the forwarder (same Makefile, same GStreamer): the injection's encoder that forces key units on request. */
export const ENCODER_BIN = fileURLToPath(new URL('./build/media-tree-encoder', import.meta.url));

export interface ForwarderProcessOptions {
  bin?: string;
  socketPath: string;
  audioPort: number;
  videoPort: number;
  mode: 'fanout' | 'demux';
  bind?: string;
  /** Told about starts, exits and the last output lines, for the app's logs. */
  onEvent?: (event: {
    kind: 'started' | 'exited';
    pid?: number;
    code?: number | null;
    signal?: string | null;
    output?: string;
  }) => void;
}

const KEEP = 8 * 1024;

export class ForwarderProcess {
  private proc: ChildProcess | undefined;
  private stopping = false;
  private backoffMs = 200;
  private timer: NodeJS.Timeout | undefined;
  private output = '';

  constructor(private readonly o: ForwarderProcessOptions) {}

  get bin(): string {
    return this.o.bin ?? FORWARDER_BIN;
  }

  /** Spawns the binary (no wait: readiness is the control socket answering PING). */
  start(): void {
    if (!existsSync(this.bin)) throw new Error(`forwarder binary not found at ${this.bin} (run scripts/setup.sh)`);
    this.spawnOnce();
  }

  private spawnOnce(): void {
    if (this.stopping) return;
    const args = [
      '--control',
      this.o.socketPath,
      '--audio-port',
      String(this.o.audioPort),
      '--video-port',
      String(this.o.videoPort),
      '--mode',
      this.o.mode,
      '--bind',
      this.o.bind ?? '127.0.0.1',
      '--die-with-parent',
    ];
    const p = spawn(this.bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = p;
    this.output = '';
    const keep = (c: Buffer) => {
      this.output = (this.output + c.toString('utf8')).slice(-KEEP);
    };
    p.stdout?.on('data', keep);
    p.stderr?.on('data', keep);
    p.once('error', () => {
      /* 'exit' or 'close' follows */
    });
    const started = Date.now();
    this.o.onEvent?.({ kind: 'started', pid: p.pid });
    p.once('close', (code, signal) => {
      if (this.proc === p) this.proc = undefined;
      this.o.onEvent?.({ kind: 'exited', code, signal, output: this.output.trim().split('\n').slice(-5).join('\n') });
      if (this.stopping) return;
      // A forwarder that ran a while gets restarted at once; one failing at start backs off.
      this.backoffMs = Date.now() - started > 10_000 ? 200 : Math.min(this.backoffMs * 2, 5_000);
      this.timer = setTimeout(() => this.spawnOnce(), this.backoffMs);
    });
  }

  /** SIGTERM, SIGKILL after graceMs; no restart afterwards. */
  async stop(graceMs = 3_000): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => p.once('close', () => resolve()));
    p.kill('SIGTERM');
    const kill = setTimeout(() => p.kill('SIGKILL'), graceMs);
    await gone;
    clearTimeout(kill);
  }
}

/** True once something accepts connections on the Unix socket `path`. */
export function accepts(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
