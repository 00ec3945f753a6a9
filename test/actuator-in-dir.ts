import { Redis } from 'ioredis';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AlertmanagerConfigOptions,
  alertmanagerConfig,
  type RunningAlertmanager,
  startAlertmanager,
} from '../servers/alertmanager.ts';
import { spawnActuatorProcess } from '../servers/actuator-process.ts';
import type { Child } from '../process/child.ts';
import { killGroup } from '../process/signals.ts';
import { type RunningRedis, startRedis } from '../servers/redis.ts';
import { Topology } from '../topology/index.ts';

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

/**
 * The actuator's end-to-end rig: real Redis with a relay's free slots, the
 * real actuator in its own temp dir, and an HA pair of real Alertmanagers
 * posting to it. `stop` ends all of it, subtrees included (they outlive the
 * actuator by design; a test that failed half-way leaves some).
 */
export interface ActuatorRig {
  dir: string;
  redis: RunningRedis;
  client: Redis;
  actuator: Child;
  actuatorUrl: string;
  ams: RunningAlertmanager[];
  stateDir: string;
  targetsDir: string;
  stop(): Promise<void>;
}

export async function startActuatorRig(o: {
  name: string;
  tree: string;
  token: string;
  relay: string;
  slots: string[];
  args: string[];
  timings: Pick<AlertmanagerConfigOptions, 'groupWait' | 'groupInterval' | 'repeatInterval'>;
}): Promise<ActuatorRig> {
  const dir = mkdtempSync(join(tmpdir(), `canopy-${o.name}-`));
  const redis = await startRedis();
  const client = new Redis(redis.port, '127.0.0.1');
  client.on('error', () => {});
  await new Topology(client, o.tree).registerSlots(o.relay, o.slots, true);
  writeFileSync(join(dir, 'token'), `${o.token}\n`);
  const { child: actuator, url: actuatorUrl } = await spawnActuatorInDir({
    dir,
    redisUrl: redis.url,
    tokenFile: join(dir, 'token'),
    args: o.args,
  });
  const ams = await startAlertmanagerPair(dir, actuatorUrl, o.token, o.timings);
  const stateDir = join(dir, 'subtrees');
  const rig: ActuatorRig = {
    dir,
    redis,
    client,
    actuator,
    actuatorUrl,
    ams,
    stateDir,
    targetsDir: join(dir, 'targets'),
    async stop() {
      if (process.env.DEBUG_ACTUATOR) console.log(actuator.output());
      for (const am of ams) await am.child.stop();
      await actuator.stop(15_000);
      for (const pid of subtreePids(stateDir)) killGroup(pid, 'SIGKILL');
      client.disconnect();
      // a test may have restarted Redis: stop the one running now
      await rig.redis.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return rig;
}
