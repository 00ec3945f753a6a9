import { join } from 'node:path';
import { spawnActuatorProcess } from '../servers/actuator-process.ts';
import type { Child } from '../process/child.ts';

/**
 * The real `canopy actuator` in a process of its own, its subtrees' state
 * under <dir>/subtrees and its file_sd files under <dir>/targets; ready when
 * /readyz answers.
 */
export async function spawnActuatorInDir(o: {
  dir: string;
  redisUrl: string;
  tokenFile: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
}): Promise<{ child: Child; url: string }> {
  return spawnActuatorProcess({
    args: [
      '--redis-url',
      o.redisUrl,
      '--token-file',
      o.tokenFile,
      '--state-dir',
      join(o.dir, 'subtrees'),
      '--targets-dir',
      join(o.dir, 'targets'),
      ...(o.args ?? []),
    ],
    env: o.env,
  });
}
