import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { ForwarderClient } from '../forwarder/client.ts';
import { ForwarderProcess } from '../forwarder/process.ts';

export interface ForwarderConfig {
  forwarderBin?: string;
  forwarderAudioPort: number;
  forwarderVideoPort: number;
  /** Where the forwarder receives RTP (its --bind). */
  forwarderBind: string;
  /** Control socket path; a fresh temp dir when not given. */
  controlSocket?: string;
}

/** A node app's own forwarder: the supervised child plus its control client. */
export interface NodeForwarder {
  proc: ForwarderProcess;
  client: ForwarderClient;
  socketPath: string;
}

export function nodeForwarder(
  c: ForwarderConfig,
  mode: 'fanout' | 'demux',
  log: Logger,
  onReconnect: () => void,
): NodeForwarder {
  const socketPath = c.controlSocket ?? join(mkdtempSync(join(tmpdir(), 'canopy-node-fwd-')), 'control.sock');
  const proc = new ForwarderProcess({
    bin: c.forwarderBin,
    socketPath,
    audioPort: c.forwarderAudioPort,
    videoPort: c.forwarderVideoPort,
    mode,
    bind: c.forwarderBind,
    onEvent: (e) => {
      if (e.kind === 'started')
        log.info(
          { pid: e.pid, mode, audioPort: c.forwarderAudioPort, videoPort: c.forwarderVideoPort },
          'forwarder started',
        );
      else log.warn({ code: e.code, signal: e.signal, output: e.output }, 'forwarder exited');
    },
  });
  // A restarted forwarder has no destinations: onReconnect puts them back.
  const client = new ForwarderClient({ socketPath, maxBackoffMs: 1_000, onReconnect });
  return { proc, client, socketPath };
}

/** True when the forwarder answers PING. */
export async function forwarderAnswers(client: ForwarderClient): Promise<boolean> {
  try {
    await client.ping();
    return true;
  } catch {
    return false;
  }
}
