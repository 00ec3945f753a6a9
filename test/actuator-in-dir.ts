import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type AlertmanagerConfigOptions,
  alertmanagerConfig,
  type RunningAlertmanager,
  startAlertmanager,
} from '../servers/alertmanager.ts';
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

/**
 * An HA pair of real Alertmanagers (clustering off, so both deliver), each
 * in a dir of its own under `dir`, posting to the actuator with `token`.
 */
export async function startAlertmanagerPair(
  dir: string,
  actuatorUrl: string,
  token: string,
  timings: Pick<AlertmanagerConfigOptions, 'groupWait' | 'groupInterval' | 'repeatInterval'>,
): Promise<RunningAlertmanager[]> {
  const ams: RunningAlertmanager[] = [];
  for (let i = 0; i < 2; i++) {
    const amDir = mkdtempSync(join(dir, `am${i}-`));
    ams.push(
      await startAlertmanager(
        amDir,
        alertmanagerConfig(amDir, { actuatorUrl: `${actuatorUrl}/alerts`, token, ...timings }),
      ),
    );
  }
  return ams;
}

/** Pids of the egress processes the local provisioner recorded under `stateDir`. */
export function subtreePids(stateDir: string): number[] {
  if (!existsSync(stateDir)) return [];
  return readdirSync(stateDir)
    .filter((f) => f.endsWith('.json'))
    .flatMap((f) =>
      (JSON.parse(readFileSync(join(stateDir, f), 'utf8')) as { nodes: Array<{ pid: number }> }).nodes.map(
        (n) => n.pid,
      ),
    );
}
