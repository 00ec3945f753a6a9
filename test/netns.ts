import { execFileSync, spawn, spawnSync } from 'node:child_process';

/**
 * A network namespace of the test's own: loopback up and a veth pair whose
 * both ends stay inside, one end with an address from 198.18.0.0/15 (the
 * benchmarking range), and no route out. Chromium gathers no ICE candidate
 * on loopback alone; with the veth it does, and with
 * `--allow-loopback-in-peer-connection` it reaches servers bound to 127.0.0.1.
 */

export interface Netns {
  name: string;
  /** The veth end's address inside the namespace. */
  address: string;
  /** Argv prefix that runs a command inside the namespace. */
  prefix: string[];
  /** Removes the namespace (and the veth pair in it); idempotent. */
  remove(): void;
}

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/** Why this process cannot create namespaces here, or null when it can. */
export function netnsUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'creating network namespaces needs root (ip netns add)';
  if (!has('ip')) return 'iproute2 (ip) is not installed';
  return null;
}

/** Creates the namespace; on any failure it is removed again before the error is thrown. */
export function createNetns(name: string, octet = 1 + (process.pid % 250)): Netns {
  const address = `198.18.${octet}.1`;
  const run = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
  let removed = false;
  const remove = () => {
    if (removed) return;
    removed = true;
    spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore', timeout: 10_000 });
  };
  run('netns', 'add', name);
  try {
    run('-n', name, 'link', 'set', 'lo', 'up');
    run('-n', name, 'link', 'add', 'cv0', 'type', 'veth', 'peer', 'name', 'cv1');
    run('-n', name, 'addr', 'add', `${address}/24`, 'dev', 'cv0');
    run('-n', name, 'addr', 'add', `198.18.${octet}.2/24`, 'dev', 'cv1');
    run('-n', name, 'link', 'set', 'cv0', 'up');
    run('-n', name, 'link', 'set', 'cv1', 'up');
  } catch (err) {
    remove();
    throw err;
  }
  return { name, address, prefix: ['ip', 'netns', 'exec', name], remove };
}

/** The namespace's routes that could lead out of it (a default one, or to neither 198.18.0.0/15 nor loopback): none is expected. */
export function routesOut(ns: Netns): string[] {
  const routes = execFileSync('ip', ['-n', ns.name, 'route', 'show', 'table', 'all'], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  return routes
    .split('\n')
    .filter((l) => /^\S/.test(l) && !/^(local|broadcast|multicast|fe80|ff00|::1)/.test(l))
    .filter((l) => !/^(198\.1[89]\.|127\.)/.test(l));
}

/**
 * Runs a TypeScript script inside the namespace (`node --import tsx <script>`)
 * and resolves with the JSON of the `RESULT <json>` line it prints; rejects
 * with the tail of its stderr when it fails, or after `timeoutMs` (SIGTERM).
 */
export function runInNetns<T>(ns: Netns, script: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const [cmd, ...args] = [...ns.prefix, process.execPath, '--import', 'tsx', script];
    const p = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr = (stderr + d).slice(-20_000)));
    const t = setTimeout(() => p.kill('SIGTERM'), timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(t);
      const tail = stderr.split('\n').slice(-40).join('\n');
      const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
      if (code === 0 && line) resolve(JSON.parse(line.slice('RESULT '.length)) as T);
      else reject(new Error(`${script} exited with ${code}${line ? '' : ' (no RESULT line)'}\n${stdout}\n${tail}`));
    });
  });
}
