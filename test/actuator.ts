import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startChild, type Child } from '../stack/child.ts';
import { freePort } from '../stack/ports.ts';
import { httpOk } from '../stack/wait.ts';

const BIN = fileURLToPath(new URL('../bin/canopy.mjs', import.meta.url));

/**
 * The real `canopy actuator` in a process of its own, its subtrees' state
 * under <dir>/subtrees and its file_sd files under <dir>/targets; ready when
 * /readyz answers.
 */
export async function startActuatorProcess(o: {
  dir: string;
  redisUrl: string;
  tokenFile: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
}): Promise<{ child: Child; url: string }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = await startChild('actuator', process.execPath, {
    args: [
      BIN, 'actuator', '--port', String(port), '--redis-url', o.redisUrl, '--token-file', o.tokenFile,
      '--state-dir', join(o.dir, 'subtrees'), '--targets-dir', join(o.dir, 'targets'),
      ...(o.args ?? []),
    ],
    env: { ...process.env, ...o.env },
    ready: () => httpOk(`${url}/readyz`),
  });
  return { child, url };
}
