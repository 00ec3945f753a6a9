import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { accepts, FORWARDER_BIN } from '../forwarder/process.ts';
import { startChild, type Child } from '../process/child.ts';
import { freePort } from '../process/ports.ts';

// The binary's path and the socket probe live in forwarder/ (node apps use them too).
export { accepts, FORWARDER_BIN };
const FORWARDER_DIR = fileURLToPath(new URL('../forwarder/', import.meta.url));

/** Set-up builds the binaries; this covers a test run straight after editing the C. */
export function buildForwarder(): void {
  execFileSync('make', ['-s', '-C', FORWARDER_DIR], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 120_000 });
}

export interface ForwarderStart {
  mode?: 'fanout' | 'demux';
  socketPath?: string;
  audioPort?: number;
  videoPort?: number;
}

export interface RunningForwarder {
  child: Child;
  socketPath: string;
  audioPort: number;
  videoPort: number;
}

/** The real forwarder on free loopback ports, its control socket in a temp dir. */
export async function startForwarder(o: ForwarderStart = {}): Promise<RunningForwarder> {
  if (!existsSync(FORWARDER_BIN)) buildForwarder();
  const socketPath = o.socketPath ?? join(mkdtempSync(join(tmpdir(), 'canopy-fwd-')), 'control.sock');
  const audioPort = o.audioPort ?? (await freePort());
  let videoPort = o.videoPort ?? (await freePort());
  while (videoPort === audioPort) videoPort = await freePort();
  const child = await startChild('media-tree-forwarder', FORWARDER_BIN, {
    args: [
      '--control',
      socketPath,
      '--audio-port',
      String(audioPort),
      '--video-port',
      String(videoPort),
      '--mode',
      o.mode ?? 'fanout',
    ],
    ready: () => accepts(socketPath),
    readyTimeoutMs: 10_000,
  });
  return { child, socketPath, audioPort, videoPort };
}
