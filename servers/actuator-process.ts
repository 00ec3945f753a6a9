import { fileURLToPath } from 'node:url';
import { startChild, type Child } from '../process/child.ts';
import { httpOk } from '../process/wait.ts';

const BIN = fileURLToPath(new URL('../bin/canopy.mjs', import.meta.url));

/**
 * `canopy actuator` in a process of its own on a port the kernel picks when it
 * binds (never one another process can take between a check and the bind);
 * its URL is the `actuator: <url>` line it prints. Ready when /readyz answers.
 */
export async function spawnActuatorProcess(o: {
  args: string[];
  env?: NodeJS.ProcessEnv;
  readyTimeoutMs?: number;
}): Promise<{ child: Child; url: string }> {
  let url = '';
  const child = await startChild('actuator', process.execPath, {
    args: [BIN, 'actuator', '--port', '0', '--listen-host', '127.0.0.1', ...o.args],
    env: { ...process.env, ...o.env },
    ready: async (output) => {
      url ||= /^actuator: (http:\/\/127\.0\.0\.1:\d+)$/m.exec(output())?.[1] ?? '';
      return url !== '' && (await httpOk(`${url}/readyz`));
    },
    readyTimeoutMs: o.readyTimeoutMs ?? 30_000,
  });
  return { child, url };
}
