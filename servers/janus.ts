import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startChild, type Child } from '../process/child.ts';
import { httpOk } from '../process/wait.ts';

/**
 * Debian's Janus 1.1.2 (the seed's media server), the egress bench's
 * baseline. Its config is written to a temp dir: only the HTTP transport and
 * the streaming plugin are loaded (their libraries linked into folders of
 * their own), no demo mountpoints, no admin API, no session timeout. It runs
 * inside a network namespace given by the caller (`exec`): libnice gathers no
 * candidate on loopback alone, so Janus needs an interface (`host`) its
 * viewers reach.
 */

const LIB = '/usr/lib/x86_64-linux-gnu/janus';

export interface JanusOptions {
  /** Argv prefix running a command in the namespace (`ip netns exec <ns>`). */
  exec: string[];
  /** The namespace's address: HTTP, ICE and the mountpoints' RTP ports bind it. */
  host: string;
  /** The namespace's interface ICE gathers on. */
  iface: string;
  /** Janus's `event_loops`: handles share this many media threads (0: a thread per handle, Janus's default). */
  eventLoops: number;
  httpPort?: number;
}

export interface RunningJanus {
  child: Child;
  /** The Janus API root, e.g. http://198.18.7.1:8088/janus. */
  url: string;
  stop(): Promise<void>;
}

/** Null when Debian's janus (binary, HTTP transport, streaming plugin) is installed, else what is missing. */
export function janusMissing(): string | null {
  if (spawnSync('sh', ['-c', 'command -v janus']).status !== 0) return 'janus is not installed (Debian package janus)';
  for (const lib of ['plugins/libjanus_streaming.so', 'transports/libjanus_http.so'])
    if (spawnSync('test', ['-e', join(LIB, lib)]).status !== 0) return `janus has no ${lib}`;
  return null;
}

/** The three config files, by name. */
export function janusConfig(dir: string, o: JanusOptions, httpPort: number): Record<string, string> {
  return {
    'janus.jcfg': `general: {
  configs_folder = "${dir}"
  plugins_folder = "${dir}/plugins"
  transports_folder = "${dir}/transports"
  events_folder = "${dir}/empty"
  loggers_folder = "${dir}/empty"
  debug_level = 3
  session_timeout = 0
  event_loops = ${o.eventLoops}
  server_name = "canopy-bench"
  interface = "${o.host}"
}
media: {
  rtp_port_range = "20000-40000"
}
nat: {
  ice_enforce_list = "${o.iface}"
}
`,
    'janus.transport.http.jcfg': `general: {
  json = "plain"
  base_path = "/janus"
  http = true
  port = ${httpPort}
  ip = "${o.host}"
  https = false
}
admin: {
  admin_http = false
  admin_https = false
}
`,
    // No mountpoints: the bench creates its own through the API.
    'janus.plugin.streaming.jcfg': 'general: {\n}\n',
  };
}

/** Starts Janus in the namespace and waits until its API answers `info`. */
export async function startJanus(o: JanusOptions): Promise<RunningJanus> {
  const missing = janusMissing();
  if (missing) throw new Error(missing);
  const dir = mkdtempSync(join(tmpdir(), 'canopy-janus-'));
  const port = o.httpPort ?? 8088;
  try {
    for (const [name, text] of Object.entries(janusConfig(dir, o, port))) writeFileSync(join(dir, name), text);
    for (const sub of ['plugins', 'transports', 'empty']) mkdirSync(join(dir, sub));
    symlinkSync(join(LIB, 'plugins/libjanus_streaming.so'), join(dir, 'plugins/libjanus_streaming.so'));
    symlinkSync(join(LIB, 'transports/libjanus_http.so'), join(dir, 'transports/libjanus_http.so'));
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const url = `http://${o.host}:${port}/janus`;
  const [cmd, ...prefix] = o.exec;
  let child: Child;
  try {
    child = await startChild('janus', cmd!, {
      args: [...prefix, 'janus', '--config', join(dir, 'janus.jcfg'), '--configs-folder', dir, '--disable-colors'],
      ready: () => httpOk(`${url}/info`).catch(() => false),
      readyTimeoutMs: 20_000,
    });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    child,
    url,
    async stop() {
      await child.stop(3_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
