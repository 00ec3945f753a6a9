import { Command, InvalidArgumentError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { startActuatorInProcess } from '../alertmanager-webhook/app.ts';
import { readToken } from '../alertmanager-webhook/auth.ts';
import { KubernetesProvisioner } from '../alertmanager-webhook/provisioners/kubernetes.ts';
import { LocalProvisioner } from '../alertmanager-webhook/provisioners/local.ts';
import type { Provisioner } from '../alertmanager-webhook/provisioners/provisioner.ts';
import { SCALING_POLICIES } from '../alertmanager-webhook/decide.ts';
import { DURATION_FORM, parseDuration } from '../process/duration.ts';
import { StackNetwork } from '../process/netns.ts';
import { intOption } from './options.ts';

/** A duration flag such as 30s, 5m, 1h; refused with a message naming the form. */
function durationOption(flags: string, description: string, env: string, def: string): Option {
  const parse = (raw: string) => {
    const ms = parseDuration(raw);
    if (ms === null) throw new InvalidArgumentError(`expected ${DURATION_FORM}, got "${raw}"`);
    return ms;
  };
  return new Option(flags, description).env(env).default(parse(def), def).argParser(parse);
}

/** A secret URL kept in a file (not on the command line, where ps shows it). */
function readUrlFile(path: string): string {
  const url = readFileSync(path, 'utf8').trim();
  if (!/^https?:\/\/\S+$/.test(url)) throw new InvalidArgumentError(`${path}: expected an http(s) URL`);
  return url;
}

export function actuatorCommand(): Command {
  return new Command('actuator')
    .description(
      'the Alertmanager webhook that adds and removes egress subtrees (POST /alerts, GET /actions, /metrics, /healthz, /readyz)',
    )
    .addOption(intOption('--port <n>', 'HTTP port', 'CANOPY_ACTUATOR_PORT', 9095, 0, 65535))
    .addOption(
      new Option('--listen-host <addr>', 'address to listen on').env('CANOPY_LISTEN_HOST').default('127.0.0.1'),
    )
    .addOption(
      new Option('--redis-url <url>', 'Redis holding the topology and the actuator state')
        .env('CANOPY_REDIS_URL')
        .default('redis://127.0.0.1:6379'),
    )
    .addOption(
      new Option('--token-file <path>', 'file with the bearer token Alertmanager sends (credentials_file)')
        .env('CANOPY_ACTUATOR_TOKEN_FILE')
        .makeOptionMandatory(),
    )
    .addOption(
      intOption(
        '--body-limit <bytes>',
        'largest accepted notification',
        'CANOPY_ACTUATOR_BODY_LIMIT',
        1 << 20,
        1024,
        64 << 20,
      ),
    )
    .addOption(
      new Option('--provisioner <kind>', 'where subtrees run')
        .env('CANOPY_PROVISIONER')
        .default('local')
        .choices(['local', 'kubernetes']),
    )
    .addOption(
      new Option(
        '--kubeconfig <path>',
        'kubernetes provisioner: kubeconfig file (default: in-cluster or ~/.kube/config)',
      ).env('CANOPY_KUBECONFIG'),
    )
    .addOption(
      new Option('--namespace <ns>', "kubernetes provisioner: namespace of the subtrees (default: the context's)").env(
        'CANOPY_NAMESPACE',
      ),
    )
    .addOption(
      new Option('--image <ref>', 'kubernetes provisioner: image whose entrypoint is canopy').env(
        'CANOPY_EGRESS_IMAGE',
      ),
    )
    .addOption(
      new Option('--node-exporter-image <ref>', 'kubernetes provisioner: node_exporter sidecar image').env(
        'CANOPY_NODE_EXPORTER_IMAGE',
      ),
    )
    .addOption(
      new Option('--state-dir <path>', 'local provisioner: state files and logs of the subtrees')
        .env('CANOPY_STATE_DIR')
        .default('.canopy/subtrees'),
    )
    .addOption(
      new Option(
        '--netns <name>',
        "local provisioner: start each egress node in a network namespace of its own, on this stack namespace's bridge (canopy stack --netns)",
      ).env('CANOPY_NETNS'),
    )
    .addOption(
      new Option('--netns-subnet <a.b.c>', "with --netns: the stack's /24 in 198.18.0.0/15, e.g. 198.18.7").env(
        'CANOPY_NETNS_SUBNET',
      ),
    )
    .addOption(
      new Option('--targets-dir <path>', 'Prometheus file_sd directory the new nodes are written to')
        .env('CANOPY_TARGETS_DIR')
        .default('.canopy/targets'),
    )
    .addOption(intOption('--subtree-size <n>', 'egress nodes per subtree', 'CANOPY_SUBTREE_SIZE', 2, 1, 256))
    .addOption(
      intOption(
        '--egress-pool-size <n>',
        "local provisioner: ports in each new egress node's pool",
        'CANOPY_EGRESS_POOL_SIZE',
        100,
        4,
        10_000,
      ),
    )
    .addOption(intOption('--min-subtrees <n>', 'per tree, never fewer', 'CANOPY_MIN_SUBTREES', 0, 0, 1000))
    .addOption(intOption('--max-subtrees <n>', 'per tree, never more', 'CANOPY_MAX_SUBTREES', 4, 0, 1000))
    .addOption(intOption('--global-max-subtrees <n>', 'across all trees', 'CANOPY_GLOBAL_MAX_SUBTREES', 16, 0, 100_000))
    .addOption(
      new Option(
        '--scaling <policy>',
        "level: converge to the alert's desired_subtrees, again after each cooldown while short; episode: one subtree per firing episode",
      )
        .env('CANOPY_SCALING')
        .default('level')
        .choices(SCALING_POLICIES),
    )
    .addOption(
      intOption(
        '--max-step-subtrees <n>',
        'most subtrees one scale-out adds (level scaling)',
        'CANOPY_MAX_STEP_SUBTREES',
        4,
        1,
        1000,
      ),
    )
    .addOption(
      durationOption(
        '--scale-out-cooldown <d>',
        'no second scale-out of a tree within',
        'CANOPY_SCALE_OUT_COOLDOWN',
        '5m',
      ),
    )
    .addOption(
      durationOption(
        '--scale-in-stabilisation <d>',
        'no scale-in within this of the last change',
        'CANOPY_SCALE_IN_STABILISATION',
        '15m',
      ),
    )
    .addOption(
      durationOption(
        '--protect-new-subtree <d>',
        'a subtree younger than this is never removed',
        'CANOPY_PROTECT_NEW_SUBTREE',
        '30m',
      ),
    )
    .addOption(
      durationOption('--ready-timeout <d>', 'deadline for a new subtree to become ready', 'CANOPY_READY_TIMEOUT', '2m'),
    )
    .addOption(
      durationOption(
        '--drain-timeout <d>',
        'longest wait for a draining subtree to lose its viewers',
        'CANOPY_DRAIN_TIMEOUT',
        '10m',
      ),
    )
    .addOption(
      durationOption(
        '--reconcile-interval <d>',
        'how often running and recorded subtrees are compared and mended',
        'CANOPY_RECONCILE_INTERVAL',
        '60s',
      ),
    )
    .addOption(durationOption('--lock-ttl <d>', 'TTL of a tree lock', 'CANOPY_LOCK_TTL', '30s'))
    .addOption(
      new Option('--paused', 'decide nothing until unpaused (also: SET actuator:paused 1 in Redis)')
        .env('CANOPY_PAUSED')
        .default(false),
    )
    .addOption(new Option('--dry-run', 'decide and record, change nothing').env('CANOPY_DRY_RUN').default(false))
    .addOption(
      new Option(
        '--slack-webhook-url-file <path>',
        'file with a Slack incoming-webhook URL: each completed or failed action is posted there',
      ).env('CANOPY_SLACK_WEBHOOK_URL_FILE'),
    )
    .addOption(
      new Option('--log-level <level>', 'log level')
        .env('CANOPY_LOG_LEVEL')
        .default('info')
        .choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace']),
    )
    .action(async (o) => {
      if (!/^redis:\/\/[^\s]+$/.test(o.redisUrl))
        throw new InvalidArgumentError(`--redis-url: expected redis://host:port, got "${o.redisUrl}"`);
      if (o.maxSubtrees < o.minSubtrees)
        throw new InvalidArgumentError('--max-subtrees must be at least --min-subtrees');
      if (o.scaleInStabilisation < o.scaleOutCooldown)
        throw new InvalidArgumentError('--scale-in-stabilisation must be at least --scale-out-cooldown');
      if (Boolean(o.netns) !== Boolean(o.netnsSubnet))
        throw new InvalidArgumentError('--netns and --netns-subnet go together');
      let network: StackNetwork | undefined;
      try {
        network = o.netns ? StackNetwork.join({ ns: o.netns, subnet: o.netnsSubnet }) : undefined;
      } catch (err) {
        throw new InvalidArgumentError((err as Error).message);
      }
      const token = readToken(o.tokenFile);
      let provisioner: Provisioner;
      if (o.provisioner === 'kubernetes') {
        if (!o.image) throw new InvalidArgumentError('--image is required with --provisioner kubernetes');
        provisioner = new KubernetesProvisioner({
          kubeconfig: o.kubeconfig,
          namespace: o.namespace,
          image: o.image,
          nodeExporterImage: o.nodeExporterImage,
          redisUrl: o.redisUrl,
        });
      } else {
        provisioner = new LocalProvisioner({
          stateDir: resolve(o.stateDir),
          redisUrl: o.redisUrl,
          portsPerNode: o.egressPoolSize,
          network,
        });
      }
      const a = await startActuatorInProcess({
        listenHost: o.listenHost,
        port: o.port,
        redisUrl: o.redisUrl,
        token,
        bodyLimitBytes: o.bodyLimit,
        provisioner,
        targetsDir: resolve(o.targetsDir),
        policy: {
          scaling: o.scaling,
          maxStepSubtrees: o.maxStepSubtrees,
          minSubtrees: o.minSubtrees,
          maxSubtrees: o.maxSubtrees,
          globalMaxSubtrees: o.globalMaxSubtrees,
          scaleOutCooldownMs: o.scaleOutCooldown,
          scaleInStabilisationMs: o.scaleInStabilisation,
          protectNewSubtreeMs: o.protectNewSubtree,
          paused: Boolean(o.paused),
        },
        subtreeSize: o.subtreeSize,
        dryRun: Boolean(o.dryRun),
        owner: `${hostname()}-${process.pid}`.toLowerCase().replace(/[^a-z0-9-]/g, '-'),
        lockTtlMs: o.lockTtl,
        readyTimeoutMs: o.readyTimeout,
        drainTimeoutMs: o.drainTimeout,
        logLevel: o.logLevel,
        reconcileIntervalMs: o.reconcileInterval,
        slackUrl: o.slackWebhookUrlFile ? readUrlFile(o.slackWebhookUrlFile) : undefined,
      });
      console.log(`actuator: ${a.url}`);
      await new Promise<void>((done) => {
        const stop = () => void a.stop().then(done, done);
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
    });
}
