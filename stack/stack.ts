import { Redis } from 'ioredis';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { slotIdOf, Topology } from '../topology/index.ts';
import { alertmanagerConfig, startAlertmanager, type RunningAlertmanager } from '../servers/alertmanager.ts';
import { spawnActuatorProcess } from '../servers/actuator-process.ts';
import { startChild, type Child } from '../process/child.ts';
import { DEMO, resolveShape, rulesOverrides, type StackShape, stackRules } from './demo-config.ts';
import { evalJsonnet, renderRulePack, toYaml } from '../rules/jsonnet.ts';
import { startNodeExporter, type RunningNodeExporter } from '../servers/node-exporter.ts';
import { freePort } from '../process/ports.ts';
import { netnsAllowed, StackNetwork } from '../process/netns.ts';
import { stopGroups } from '../process/signals.ts';
import { startPrometheus, type RunningPrometheus } from '../servers/prometheus.ts';
import { startRedis, type RunningRedis } from '../servers/redis.ts';
import { httpOk } from '../process/wait.ts';

const BIN = fileURLToPath(new URL('../bin/canopy.mjs', import.meta.url));

export interface StackNode {
  id: string;
  type: 'injection' | 'relay' | 'egress';
  url: string;
  port: number;
  /** Its address: 127.0.0.1, or its own in its namespace. */
  host: string;
  child: Child;
  exporter: RunningNodeExporter;
}

/** The stack's servers a scenario can stop, start, kill and restart. */
export const COMPONENTS = ['redis', 'prometheus', 'alertmanager', 'actuator'] as const;
export type ComponentName = (typeof COMPONENTS)[number];

export interface Component {
  running(): boolean;
  /** SIGTERM (Redis: saving its data first), resolved once it is gone. */
  stop(): Promise<void>;
  /** SIGKILL: nothing saved. */
  kill(): Promise<void>;
  /** Starts it again on the same port with the same config and data dir. */
  start(): Promise<void>;
}

export interface Stack {
  /** The stack's temp dir: every config, TSDB, state file and socket is under it. */
  dir: string;
  tree: string;
  urls: { prometheus: string; alertmanager: string; actuator: string; redis: string };
  redis: Redis;
  /** Redis itself: `redis-flush` restarts it without its data. */
  redisServer: RunningRedis;
  nodes: StackNode[];
  components: Record<ComponentName, Component>;
  /** The per-node network (`--netns`), or undefined on the shared loopback. */
  network?: StackNetwork;
  /** The address this process's own sockets (a scenario's RTP receivers) use so every node reaches them. */
  localHost: string;
  /** Subtrees the actuator's local provisioner started (pids from its state dir). */
  subtreePids(): number[];
  /** Their nodes: id and pid. */
  subtreeNodes(): Array<{ id: string; pid: number }>;
  /** Stops everything, the actuator's subtrees included, and removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

export interface StackOptions {
  log?: (line: string) => void;
  /** A scenario's `stack:` block: the baseline's shape and the actuator's bounds (DEMO's otherwise). */
  shape?: StackShape;
  /** `_config` overrides of the rule pack over the demo's (a bench's baseline rules). */
  rules?: Record<string, unknown>;
  /** Prometheus' scrape and evaluation intervals over DEMO's (a bench at production timings). */
  scrapeInterval?: string;
  evaluationInterval?: string;
  /** Where Alertmanager's Slack receiver posts (a bench's listener). */
  slackUrl?: string;
}

/** The node apps' default ports: in a namespace of its own each node has them all. */
const NS_PORTS = { injection: 7070, relay: 7071, egress: 7073 } as const;

/** A file_sd target file (`<targets>/<job>/<name>.json`), written atomically. */
function writeTargets(targetsDir: string, job: string, name: string, groups: unknown[]): void {
  mkdirSync(join(targetsDir, job), { recursive: true });
  const path = join(targetsDir, job, `${name}.json`);
  writeFileSync(`${path}.tmp`, JSON.stringify(groups, null, 2));
  // rename keeps Prometheus from reading half a file
  renameSync(`${path}.tmp`, path);
}

/**
 * Starts the local stack: Redis, Alertmanager, the actuator (local
 * provisioner), one node_exporter per node, one injection, relays, the
 * baseline egress nodes and Prometheus scraping them through file_sd, each a
 * child process on a loopback port of its own. Everything is stopped and the
 * temp dir removed if any part fails to start.
 */
export async function startStack(o: StackOptions = {}): Promise<Stack> {
  const log = o.log ?? (() => {});
  const shape = resolveShape(o.shape);
  if (shape.netns && !netnsAllowed())
    throw new Error('--netns: network namespaces need root and the ip, nft and tc commands (iproute2, nftables)');
  const dir = mkdtempSync(join(tmpdir(), 'canopy-stack-'));
  const tree = DEMO.tree;
  const targetsDir = join(dir, 'targets');
  const stateDir = join(dir, 'subtrees');
  mkdirSync(targetsDir, { recursive: true });
  mkdirSync(stateDir, { recursive: true });
  // The local provisioner hands out 100-port pools from 40000 by a counter in
  // its state dir; start it at a random pool so two stacks (or a stack and the
  // actuator's tests) do not hand out the same ports.
  writeFileSync(join(stateDir, 'next-pool'), String(50 + Math.floor(Math.random() * 190)));

  let redisServer: RunningRedis | undefined;
  let client: Redis | undefined;
  let am: RunningAlertmanager | undefined;
  let actuator: Child | undefined;
  let prom: RunningPrometheus | undefined;
  let network: StackNetwork | undefined;
  const nodes: StackNode[] = [];
  const exporters: RunningNodeExporter[] = [];
  let stopped: Promise<void> | undefined;

  const subtreeNodes = (): Array<{ id: string; pid: number }> => {
    try {
      return readdirSync(stateDir)
        .filter((f) => f.endsWith('.json'))
        .flatMap((f) => {
          try {
            return (
              JSON.parse(readFileSync(join(stateDir, f), 'utf8')) as { nodes: Array<{ id: string; pid: number }> }
            ).nodes;
          } catch {
            return [];
          }
        });
    } catch {
      return [];
    }
  };
  const subtreePids = (): number[] => subtreeNodes().map((n) => n.pid);

  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      await prom?.child.stop();
      await am?.child.stop();
      // The actuator leaves its subtrees running on purpose (a restarted one finds them): the stack stops them.
      const pids = subtreePids();
      await actuator?.stop(10_000);
      await stopGroups(() => [...new Set([...pids, ...subtreePids()])]);
      // Leaves first: egress, relays, injection.
      for (const n of [...nodes].reverse()) await n.child.stop(10_000);
      for (const e of exporters) await e.child.stop();
      client?.disconnect();
      await redisServer?.stop();
      // Last: the namespaces (processes left in them killed), the bridge, the root veth and its address.
      network?.destroy();
      rmSync(dir, { recursive: true, force: true });
    })());

  try {
    if (shape.netns) {
      network = await StackNetwork.create();
      log(`network: namespace ${network.ns}, ${network.subnet}.0/24, gateway ${network.gateway}`);
    }
    const localHost = network?.gateway ?? '127.0.0.1';
    // Nodes in namespaces reach Redis at the gateway; everyone else on loopback.
    redisServer = await startRedis(undefined, { alsoBind: network ? [network.gateway] : [] });
    const nodeRedisUrl = `redis://${localHost}:${redisServer.port}`;
    client = new Redis(redisServer.port, '127.0.0.1', { maxRetriesPerRequest: 2 });
    client.on('error', () => {});
    log(`redis ready on ${redisServer.url}`);

    // The actuator first, on a port it binds itself: Alertmanager then posts to it.
    const token = `stack-${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
    writeFileSync(join(dir, 'actuator-token'), `${token}\n`);
    const a = DEMO.actuator;
    let actuatorUrl = '';
    const actuatorArgs = (): string[] => [
      ...(actuatorUrl ? ['--port', new URL(actuatorUrl).port] : []),
      '--redis-url',
      // Its subtree nodes get the same URL: the gateway when they live in namespaces.
      nodeRedisUrl,
      ...(network ? ['--netns', network.ns, '--netns-subnet', network.subnet] : []),
      '--token-file',
      join(dir, 'actuator-token'),
      '--state-dir',
      stateDir,
      '--targets-dir',
      targetsDir,
      '--scaling',
      shape.scaling,
      '--max-step-subtrees',
      String(shape.maxStepSubtrees),
      '--subtree-size',
      String(shape.subtreeSize),
      '--egress-pool-size',
      String(shape.subtreePoolSize),
      '--max-subtrees',
      String(shape.maxSubtrees),
      '--scale-out-cooldown',
      a.scaleOutCooldown,
      '--scale-in-stabilisation',
      a.scaleInStabilisation,
      '--protect-new-subtree',
      a.protectNewSubtree,
      '--drain-timeout',
      a.drainTimeout,
      '--ready-timeout',
      a.readyTimeout,
      '--reconcile-interval',
      a.reconcileInterval,
      '--lock-ttl',
      a.lockTtl,
    ];
    const spawnActuator = async () => {
      ({ child: actuator, url: actuatorUrl } = await spawnActuatorProcess({
        args: actuatorArgs(),
        // Its subtrees are detached (they outlive an actuator restart); this makes them go with the stack.
        env: { CANOPY_EXIT_WITH_PID: String(process.pid) },
      }));
    };
    await spawnActuator();
    const actuatorPort = Number(new URL(actuatorUrl).port);
    const amDir = join(dir, 'alertmanager');
    mkdirSync(amDir, { recursive: true });
    const amConfig = alertmanagerConfig(amDir, {
      actuatorUrl: `${actuatorUrl}/alerts`,
      token,
      ...DEMO.alertmanager,
      slackUrl: o.slackUrl,
    });
    am = await startAlertmanager(amDir, amConfig);
    log(`alertmanager ready on ${am.url}`);
    writeTargets(targetsDir, 'canopy-actuator', 'actuator', [{ targets: [`127.0.0.1:${actuatorPort}`] }]);
    log(`actuator ready on ${actuatorUrl}`);

    // The baseline tree. Each node gets a node_exporter of its own, so its
    // CPU/memory series exist with the node's target labels (on one machine
    // they all report the machine, which is why the demo scales on ports).
    const t = DEMO.topology;
    const startNode = async (type: StackNode['type'], id: string, extra: string[]): Promise<StackNode> => {
      const link = await network?.add(id);
      const host = link?.host ?? '127.0.0.1';
      const port = link ? NS_PORTS[type] : await freePort();
      const args = [
        ...(link ? [...link.exec.slice(1), process.execPath] : []),
        BIN,
        'node',
        type,
        '--node-id',
        id,
        '--tree-id',
        tree,
        '--redis-url',
        nodeRedisUrl,
        '--port',
        String(port),
        '--listen-host',
        host,
        '--advertise-host',
        host,
      ];
      if (type !== 'injection') {
        const fa = link ? 5002 : await freePort();
        let fv = link ? 5004 : await freePort();
        while (fv === fa) fv = await freePort();
        if (link) args.push('--forwarder-bind', host);
        // WebRTC viewers reach an egress node in its namespace at its own address.
        if (link && type === 'egress') args.push('--ice-bind', host);
        args.push(
          '--forwarder-audio-port',
          String(fa),
          '--forwarder-video-port',
          String(fv),
          '--control-socket',
          join(dir, `${id}.sock`),
        );
      }
      args.push(...extra);
      const url = `http://${host}:${port}`;
      // port: only this node's own answer counts (no retry on another port: the id is taken once registered).
      // In a namespace of its own nobody else can hold it (and /proc/net here shows another namespace).
      const child = await startChild(id, link ? 'ip' : process.execPath, {
        args,
        ready: () => httpOk(`${url}/readyz`),
        readyTimeoutMs: 30_000,
        port: link ? undefined : port,
      });
      const exporter = await startNodeExporter(undefined, link);
      exporters.push(exporter);
      const node = { id, type, url, port, host, child, exporter };
      nodes.push(node);
      const labels = { tree_id: tree, node_id: id, node_type: type };
      writeTargets(targetsDir, `media-tree-${type}`, id, [{ targets: [`${host}:${port}`], labels }]);
      writeTargets(targetsDir, 'node-exporter', id, [{ targets: [exporter.url.replace('http://', '')], labels }]);
      log(`${id} ready on ${url} (node_exporter ${exporter.url})`);
      return node;
    };

    await startNode('injection', 'injection-1', ['--slots', String(t.injectionSlots), '--source', t.source]);
    for (let r = 1; r <= t.relays; r++)
      await startNode('relay', `relay-${r}`, [
        '--slots',
        // One per subtree the actuator may add, and the baseline's.
        String(Math.max(t.relaySlots, shape.maxSubtrees + 1)),
        '--parent-slot',
        slotIdOf('injection-1', (r - 1) % t.injectionSlots),
      ]);
    // The baseline egress nodes take relay-1-s0 (taken out of the pool the actuator draws from); the others are the actuator's.
    await new Topology(client, tree).withdrawSlot('relay-1-s0');
    // Below Linux's ephemeral range (32768-), at a random place so two stacks do not meet.
    let poolBase = 20_000 + Math.floor(Math.random() * 12_000);
    for (let e = 1; e <= shape.egressNodes; e++) {
      const range = `${poolBase}-${poolBase + shape.egressPoolSize - 1}`;
      poolBase += shape.egressPoolSize;
      await startNode('egress', `egress-${e}`, ['--parent-slot', 'relay-1-s0', '--port-range', range]);
    }

    const { rules, alerts } = renderRulePack(rulesOverrides({ ...stackRules(shape), ...o.rules }));
    const promDir = join(dir, 'prometheus');
    mkdirSync(promDir, { recursive: true });
    writeFileSync(join(promDir, 'media-tree-rules.yaml'), rules);
    writeFileSync(join(promDir, 'media-tree-alerts.yaml'), alerts);
    const config = evalJsonnet(
      `(import 'deploy/prometheus.libsonnet').new(sd='file', scrapeInterval=${JSON.stringify(o.scrapeInterval ?? DEMO.scrapeInterval)}, evaluationInterval=${JSON.stringify(o.evaluationInterval ?? DEMO.evaluationInterval)}, ` +
        `ruleFiles=${JSON.stringify([join(promDir, 'media-tree-rules.yaml'), join(promDir, 'media-tree-alerts.yaml')])}, ` +
        `targetsDir=${JSON.stringify(targetsDir)}, alertmanagers=${JSON.stringify([am.url.replace('http://', '')])})`,
    );
    const promStart = {
      dir: promDir,
      config: toYaml(config),
      extraArgs: [`--rules.alert.resend-delay=${DEMO.alertResendDelay}`],
    };
    prom = await startPrometheus(promStart);
    log(`prometheus ready on ${prom.url}`);

    const alive = (c: Child | undefined) => !!c && c.process.exitCode === null && c.process.signalCode === null;
    const killChild = async (c: Child | undefined) => {
      if (!alive(c)) return;
      const gone = new Promise((r) => c!.process.once('exit', r));
      c!.process.kill('SIGKILL');
      await gone;
    };
    const promPort = Number(new URL(prom.url).port);
    const amPort = Number(new URL(am.url).port);
    const redisRun = redisServer;
    const components: Record<ComponentName, Component> = {
      redis: {
        running: () => alive(redisRun.child),
        stop: () => redisRun.halt({ keepData: true }),
        kill: () => killChild(redisRun.child),
        start: () => redisRun.start(),
      },
      prometheus: {
        running: () => alive(prom?.child),
        stop: () => prom!.child.stop(),
        kill: () => killChild(prom?.child),
        start: async () => {
          prom = await startPrometheus({ ...promStart, port: promPort });
        },
      },
      alertmanager: {
        running: () => alive(am?.child),
        stop: () => am!.child.stop(),
        kill: () => killChild(am?.child),
        start: async () => {
          am = await startAlertmanager(amDir, amConfig, amPort);
        },
      },
      actuator: {
        running: () => alive(actuator),
        stop: () => actuator!.stop(10_000),
        kill: () => killChild(actuator),
        start: spawnActuator,
      },
    };

    return {
      dir,
      tree,
      urls: { prometheus: prom.url, alertmanager: am.url, actuator: actuatorUrl, redis: redisServer.url },
      redis: client,
      redisServer,
      nodes,
      components,
      network,
      localHost,
      subtreePids,
      subtreeNodes,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
