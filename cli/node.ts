import { exitWithPid } from '../process/exit-with.ts';
import { Command, InvalidArgumentError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { KEYFRAME_REQUEST_INTERVAL_MS } from '../nodes/keyframe-requests.ts';
import { SOURCE_KINDS } from '../nodes/rtp-source.ts';
import { DURATION_FORM, parseDuration } from '../process/duration.ts';
import { ID_PATTERN } from '../topology/ids.ts';
import { intOption } from './options.ts';

/** `canopy node injection|relay|egress`: every setting a flag and an environment variable. */

function idOption(flags: string, description: string, env: string, def?: string): Option {
  const o = new Option(flags, description).env(env).argParser((raw: string) => {
    if (!ID_PATTERN.test(raw))
      throw new InvalidArgumentError(
        `expected 1..63 of a-z, 0-9, '-' (not starting with '-'), got ${JSON.stringify(raw)}`,
      );
    return raw;
  });
  return def === undefined ? o : o.default(def);
}

function hostOption(flags: string, description: string, env: string, def: string, literalOnly = false): Option {
  return new Option(flags, description)
    .env(env)
    .default(def)
    .argParser((raw: string) => {
      const name =
        /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(
          raw,
        );
      if (isIP(raw) === 0 && (literalOnly || !name))
        throw new InvalidArgumentError(
          `expected ${literalOnly ? 'an IP address' : 'an IP address or host name'}, got ${JSON.stringify(raw)}`,
        );
      return raw;
    });
}

function common(cmd: Command, defaultPort: number): Command {
  return cmd
    .addOption(idOption('--tree-id <id>', 'tree this node belongs to', 'CANOPY_TREE_ID', 'tree-1'))
    .addOption(
      idOption(
        '--node-id <id>',
        "this node's id (also its Prometheus node_id)",
        'CANOPY_NODE_ID',
      ).makeOptionMandatory(),
    )
    .addOption(
      new Option('--redis-url <url>', 'Redis holding the topology')
        .env('CANOPY_REDIS_URL')
        .default('redis://127.0.0.1:6379')
        .argParser((raw: string) => {
          let u: URL;
          try {
            u = new URL(raw);
          } catch {
            throw new InvalidArgumentError(`expected a redis:// URL, got ${JSON.stringify(raw)}`);
          }
          if (u.protocol !== 'redis:' && u.protocol !== 'rediss:')
            throw new InvalidArgumentError(`expected a redis:// or rediss:// URL, got ${JSON.stringify(raw)}`);
          return raw;
        }),
    )
    .addOption(
      intOption(
        '--port <n>',
        'HTTP port (/metrics, /healthz, /readyz, API)',
        'CANOPY_HTTP_PORT',
        defaultPort,
        1,
        65535,
      ),
    )
    .addOption(
      hostOption('--listen-host <addr>', 'address the HTTP server listens on', 'CANOPY_LISTEN_HOST', '0.0.0.0', true),
    )
    .addOption(
      hostOption(
        '--advertise-host <host>',
        'address other nodes use to reach this one (recorded in Redis)',
        'CANOPY_ADVERTISE_HOST',
        '127.0.0.1',
      ),
    )
    .addOption(
      new Option('--log-level <level>', 'log level')
        .env('CANOPY_LOG_LEVEL')
        .default('info')
        .choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace']),
    );
}

function forwarderOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option(
        '--forwarder-bin <path>',
        'media-tree-forwarder binary (default: forwarder/build/media-tree-forwarder)',
      ).env('CANOPY_FORWARDER_BIN'),
    )
    .addOption(
      intOption(
        '--forwarder-audio-port <n>',
        'UDP port the forwarder receives audio RTP on',
        'CANOPY_FORWARDER_AUDIO_PORT',
        5002,
        1,
        65535,
      ),
    )
    .addOption(
      intOption(
        '--forwarder-video-port <n>',
        'UDP port the forwarder receives video RTP on',
        'CANOPY_FORWARDER_VIDEO_PORT',
        5004,
        1,
        65535,
      ),
    )
    .addOption(
      hostOption(
        '--forwarder-bind <addr>',
        'address the forwarder receives RTP on',
        'CANOPY_FORWARDER_BIND',
        '127.0.0.1',
        true,
      ),
    )
    .addOption(
      new Option('--control-socket <path>', 'forwarder control socket (default: in a fresh temp dir)').env(
        'CANOPY_CONTROL_SOCKET',
      ),
    )
    .addOption(
      idOption(
        '--parent-slot <slot>',
        'slot to attach to at start (e.g. injection-1-s0, relay-1-s0)',
        'CANOPY_PARENT_SLOT',
      ),
    );
}

/** A duration flag in [minMs, maxMs]; `allowOff` also takes `off` (the string: commander turns a parsed null into ''). */
function durationOption(
  flags: string,
  description: string,
  env: string,
  defMs: number,
  minMs: number,
  maxMs: number,
  allowOff = false,
): Option {
  const show = (ms: number) => (ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`);
  return new Option(flags, description)
    .env(env)
    .default(defMs, show(defMs))
    .argParser((raw: string) => {
      if (allowOff && raw.trim() === 'off') return 'off';
      const ms = parseDuration(raw);
      if (ms === null || ms < minMs || ms > maxMs)
        throw new InvalidArgumentError(
          `expected ${DURATION_FORM}, ${show(minMs)}..${show(maxMs)}${allowOff ? ', or off' : ''}, got ${JSON.stringify(raw)}`,
        );
      return ms;
    });
}

/** `--keyframe-request-interval` of egress and injection nodes (docs/node-apps.md, "Keyframes on demand"). */
function keyframeRequestInterval(passedTo: string): Option {
  return durationOption(
    '--keyframe-request-interval <duration|off>',
    `at most one viewer keyframe request (PLI/FIR) per session per this long goes ${passedTo}; off: none`,
    'CANOPY_KEYFRAME_REQUEST_INTERVAL',
    KEYFRAME_REQUEST_INTERVAL_MS,
    0,
    60_000,
    true,
  );
}

/** A `durationOption(..., allowOff)` value as the node configs take it: null for off. */
const msOrOff = (v: number | 'off'): number | null => (v === 'off' ? null : v);

function portRange(raw: string): [number, number] {
  const m = /^(\d{1,5})-(\d{1,5})$/.exec(raw.trim());
  const [a, b] = m ? [Number(m[1]), Number(m[2])] : [NaN, NaN];
  if (!m || a < 1 || b > 65535 || a > b)
    throw new InvalidArgumentError(`expected MIN-MAX within 1-65535, got ${JSON.stringify(raw)}`);
  return [a, b];
}

function checkPorts(o: { port: number; forwarderAudioPort: number; forwarderVideoPort: number }): void {
  if (o.forwarderAudioPort === o.forwarderVideoPort)
    throw new Error('--forwarder-audio-port and --forwarder-video-port must differ');
}

export function nodeCommand(): Command {
  const node = new Command('node')
    .description('run a reference node app (injection, relay, egress)')
    .showHelpAfterError();
  // Checked before the app touches Redis: a bad value changes nothing.
  node.hook('preAction', () => void exitWithPid(process.env.CANOPY_EXIT_WITH_PID));

  common(
    node.command('injection').description('takes broadcast sessions, generates their RTP, sends it to its relays'),
    7070,
  )
    .addOption(intOption('--slots <n>', 'slots relays attach to ({node-id}-s0 ...)', 'CANOPY_SLOTS', 1, 1, 64))
    .addOption(
      new Option(
        '--source <kind>',
        'built-in source: encoded (VP8 640x360@30 + Opus, decodable) or synthetic (filler at exact packet rates)',
      )
        .env('CANOPY_SOURCE')
        .default('encoded')
        .choices(SOURCE_KINDS),
    )
    .addOption(
      intOption('--audio-pps <n>', 'synthetic source: audio packets per second', 'CANOPY_AUDIO_PPS', 50, 1, 10_000),
    )
    .addOption(
      intOption('--video-pps <n>', 'synthetic source: video packets per second', 'CANOPY_VIDEO_PPS', 250, 1, 50_000),
    )
    .addOption(
      new Option(
        '--whip-token-file <path>',
        'file holding the bearer token WHIP publishers send (POST /whip/<session>); WHIP is off without it',
      ).env('CANOPY_WHIP_TOKEN_FILE'),
    )
    .addOption(
      new Option(
        '--whip-grace <duration>',
        'how long a WHIP session whose publisher dropped (without DELETE) waits for it to come back before ending',
      )
        .env('CANOPY_WHIP_GRACE')
        .default(30_000, '30s')
        .argParser(durationBetween(1_000, 3_600_000, '1s..1h')),
    )
    .addOption(
      new Option(
        '--ingest-bind <addr>',
        "the address RTP ingest ports and WHIP publishers' PeerConnections bind (the one publishers reach)",
      )
        .env('CANOPY_INGEST_BIND')
        .default('127.0.0.1')
        .argParser(iceBind),
    )
    .addOption(
      durationOption(
        '--keyframe-interval <duration>',
        'encoded source: time between periodic keyframes (viewers also get one on request)',
        'CANOPY_KEYFRAME_INTERVAL',
        1_000,
        100,
        3_600_000,
      ),
    )
    .addOption(keyframeRequestInterval("to the session's source"))
    .addOption(
      durationOption(
        '--keyframe-request-every <duration|off>',
        "also ask every session's source for a keyframe this often, whatever viewers ask",
        'CANOPY_KEYFRAME_REQUEST_EVERY',
        0,
        1_000,
        3_600_000,
        true,
      ).default('off'),
    )
    .action(async (o, cmd: Command) => {
      const whipToken = o.whipTokenFile ? readToken(o.whipTokenFile as string, cmd) : undefined;
      // A rate the encoder would ignore is a mistake worth saying.
      for (const [key, flag] of [
        ['audioPps', '--audio-pps'],
        ['videoPps', '--video-pps'],
      ] as const)
        if (o.source !== 'synthetic' && cmd.getOptionValueSource(key) !== 'default')
          cmd.error(
            `error: ${flag} applies to --source synthetic only (the encoded source's rates follow its bitrate)`,
          );
      if (o.source !== 'encoded' && cmd.getOptionValueSource('keyframeInterval') !== 'default')
        cmd.error('error: --keyframe-interval applies to --source encoded only');
      const { mainInjection } = await import('../nodes/injection.ts');
      await mainInjection({
        ...o,
        whipToken,
        whipGraceMs: o.whipGrace,
        keyframeIntervalMs: o.keyframeInterval,
        keyframeRequestIntervalMs: msOrOff(o.keyframeRequestInterval),
        keyframeRequestEveryMs: msOrOff(o.keyframeRequestEvery),
      });
    });

  forwarderOptions(
    common(node.command('relay').description('fans RTP out to the egress nodes attached to its slots'), 7071),
  )
    .addOption(
      intOption(
        '--slots <n>',
        'relay slots offered in relay-slots:{tree}:available ({node-id}-s0 ...)',
        'CANOPY_SLOTS',
        4,
        1,
        256,
      ),
    )
    .action(async (o) => {
      checkPorts(o);
      const { mainRelay } = await import('../nodes/relay.ts');
      await mainRelay(o);
    });

  forwarderOptions(
    common(node.command('egress').description('mountpoints for the live sessions, WebRTC viewers through WHEP'), 7073),
  )
    .addOption(
      new Option('--port-range <min-max>', 'UDP port pool: 2 ports per mountpoint, 1 per viewer')
        .env('CANOPY_PORT_RANGE')
        .default([20000, 20199], '20000-20199')
        .argParser(portRange),
    )
    .addOption(
      hostOption(
        '--mountpoint-host <addr>',
        'address the built-in mountpoints bind',
        'CANOPY_MOUNTPOINT_HOST',
        '127.0.0.1',
        true,
      ),
    )
    .addOption(
      new Option(
        '--ice-bind <addr>',
        "the one address viewers' PeerConnections bind and gather (real deployments: the address viewers reach)",
      )
        .env('CANOPY_ICE_BIND')
        .default('127.0.0.1')
        .argParser(iceBind),
    )
    .addOption(
      new Option(
        '--viewer-connect-timeout <duration>',
        'a WHEP offer not connected by then is ended, its port returned',
      )
        .env('CANOPY_VIEWER_CONNECT_TIMEOUT')
        .default(15_000, '15s')
        .argParser(durationBetween(1_000, 600_000, '1s..10m')),
    )
    .addOption(
      intOption(
        '--nack-buffer <n>',
        'RTP packets kept per viewer track to resend on NACK (0: NACKs not answered)',
        'CANOPY_NACK_BUFFER',
        512,
        0,
        4096,
      ),
    )
    .addOption(keyframeRequestInterval("to the session's injection node"))
    .action(async (o) => {
      checkPorts(o);
      const [portMin, portMax] = o.portRange as [number, number];
      const iceAdvertise = iceAdvertiseFor(o.iceBind as string, o.advertiseHost as string);
      const { mainEgress } = await import('../nodes/egress.ts');
      await mainEgress({
        ...o,
        portMin,
        portMax,
        iceAdvertise,
        viewerConnectTimeoutMs: o.viewerConnectTimeout,
        nackBuffer: o.nackBuffer,
        keyframeRequestIntervalMs: msOrOff(o.keyframeRequestInterval),
      });
    });

  return node;
}

function durationBetween(min: number, max: number, shown: string): (raw: string) => number {
  return (raw) => {
    const ms = parseDuration(raw);
    if (ms === null || ms < min || ms > max)
      throw new InvalidArgumentError(`expected ${DURATION_FORM}, ${shown}, got ${JSON.stringify(raw)}`);
    return ms;
  };
}

/** The WHIP bearer token: the file's content without surrounding whitespace, visible ASCII, 16..1024 characters. */
function readToken(path: string, cmd: Command): string {
  let token: string;
  try {
    token = readFileSync(path, 'utf8').trim();
  } catch (err) {
    cmd.error(`error: --whip-token-file ${path}: ${(err as Error).message}`);
  }
  if (!/^[\x21-\x7e]{16,1024}$/.test(token))
    cmd.error(`error: --whip-token-file ${path}: expected one token of 16..1024 visible ASCII characters`);
  return token;
}

/** `--ice-bind`: one IP literal; never the wildcard, which would gather on every interface of the machine. */
function iceBind(raw: string): string {
  if (isIP(raw) === 0) throw new InvalidArgumentError(`expected an IP address, got ${JSON.stringify(raw)}`);
  if (raw === '0.0.0.0' || raw === '::')
    throw new InvalidArgumentError('expected one address: a wildcard would gather on every interface');
  return raw;
}

const isLoopback = (a: string) => a.startsWith('127.') || a === '::1';

/**
 * The address WHEP answers advertise: `--advertise-host` when it is an IP
 * (behind a 1:1 NAT it differs from the bound one), else the bound address.
 * A loopback bind advertised as a routable address could never connect: refused.
 */
export function iceAdvertiseFor(bind: string, advertiseHost: string): string {
  if (isIP(advertiseHost) === 0) return bind;
  if (isLoopback(bind) && !isLoopback(advertiseHost)) {
    process.stderr.write(
      `error: --advertise-host ${advertiseHost} with --ice-bind ${bind}: viewers could not reach a loopback ` +
        'PeerConnection; set --ice-bind (CANOPY_ICE_BIND) to the address viewers reach\n',
    );
    process.exit(2);
  }
  return advertiseHost;
}
