import { execFile, execFileSync, spawn, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { processAlive } from './signals.ts';

const run = promisify(execFile);

/**
 * A network of its own per node: a namespace joined by a veth pair to a
 * bridge in the stack's namespace, on a /24 of 198.18.0.0/15 (the
 * benchmarking range: nobody's real network). The stack's namespace is
 * `canopy-<owner pid>` and each node's `canopy-<owner pid>-<node id>`, so
 * what a dead owner left is found by name (`sweepDeadOwners`). The root
 * namespace has one veth into the bridge (`cnpy<n>`, .254 of the /24): the
 * stack's own servers, on 127.0.0.1 as without namespaces, reach the nodes
 * through it, and it goes with the stack's namespace (a veth dies with
 * either end).
 */

export const NETNS_PREFIX = 'canopy-';
/** Matches our namespaces and captures the owner's pid. */
const OWNED = /^canopy-(\d+)(?:-|$)/;
const SUBNETS = 512; // /24s in 198.18.0.0/15

/** The nftables table a node's loss rule lives in (in the node's namespace). */
const FAULT_TABLE = 'canopy_fault';

export const LOSS_DIRECTIONS = ['in', 'out'] as const;
export type LossDirection = (typeof LOSS_DIRECTIONS)[number];

/** What `impair` imposes on a node's incoming link. */
export interface Impairment {
  /** Percent of UDP dropped (0..100). */
  lossPercent?: number;
  /**
   * Which way the loss hits: `in` (default) what the node receives over its
   * link, `out` what it sends over it (an egress's packets to its viewers,
   * after it has kept them for NACKs).
   */
  lossDirection?: LossDirection;
  /** tc's rate syntax (`800kbit`) and its value. */
  rate?: { text: string; bitsPerSecond: number };
  /** netem, only where the kernel has it. */
  delayMs?: number;
  jitterMs?: number;
}

/** What the actuator's local provisioner needs of a node network: one per node, through an interface. */
export interface NodeNetwork {
  /** Makes `nodeId`'s namespace: the command prefix that runs a program in it, and its address. */
  add(nodeId: string): Promise<NodeLink>;
  /** Removes it (its processes killed first); success when it is already gone. */
  remove(nodeId: string): Promise<void>;
}

export interface NodeLink {
  ns: string;
  host: string;
  /** `ip netns exec <ns>`: prepend to a command to run it in the node's namespace. */
  exec: string[];
}

/** True where this process may make namespaces, links and nftables rules (root, with ip, nft and tc). */
export function netnsAllowed(): boolean {
  if (process.getuid?.() !== 0) return false;
  return ['ip', 'nft', 'tc'].every((c) => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0);
}

/** The /24 with index `i` (0..511) of 198.18.0.0/15, as its first three octets. */
function subnetOf(i: number): string {
  return `198.${18 + (i >> 8)}.${i & 255}`;
}

async function ip(args: string[]): Promise<string> {
  try {
    return (await run('ip', args, { timeout: 10_000 })).stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(' ')}: ${(e.stderr ?? e.message).trim()}`);
  }
}

/** Names of every network namespace (`ip netns list` prints `name (id: n)`). */
export function listNamespaces(): string[] {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return (r.stdout ?? '')
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter(Boolean);
}

/** Kills what runs in a namespace, then deletes it (its links go with it). */
function deleteNamespace(ns: string): void {
  const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout ?? '';
  for (const p of pids.split('\n').filter(Boolean)) {
    try {
      process.kill(Number(p), 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  spawnSync('ip', ['netns', 'del', ns]);
}

/** Removes the namespaces (and so the links and addresses) of stacks whose owner process is gone. */
export function sweepDeadOwners(): string[] {
  const dead = listNamespaces().filter((ns) => {
    const m = OWNED.exec(ns);
    return m && !processAlive(Number(m[1]));
  });
  // Nodes' namespaces first, the stack's (the bridge, the root veth) last.
  for (const ns of dead.sort((a, b) => b.length - a.length)) deleteNamespace(ns);
  return dead;
}

/** Our namespaces of one owner. */
export function namespacesOf(owner: number): string[] {
  return listNamespaces().filter((ns) => OWNED.exec(ns)?.[1] === String(owner));
}

export interface StackNetworkInfo {
  /** The stack's namespace (holds the bridge). */
  ns: string;
  /** First three octets of the /24, e.g. 198.18.7. */
  subnet: string;
}

/** The stack's network: the bridge namespace, its /24, and one namespace per node. */
export class StackNetwork implements NodeNetwork {
  private constructor(
    readonly ns: string,
    readonly subnet: string,
    /** The root namespace's end of the uplink: the address nodes reach the stack's servers at. */
    readonly gateway: string,
    /** The root namespace's end of the uplink (only the creator holds it). */
    private readonly uplink?: string,
    private readonly reaper?: number,
  ) {}

  /**
   * Makes the stack's namespace and bridge for owner `owner` (this process),
   * on the first /24 no other interface uses, after sweeping what dead owners
   * left. A detached reaper removes it all once the owner is gone, even
   * killed outright.
   */
  static async create(owner = process.pid): Promise<StackNetwork> {
    sweepDeadOwners();
    const ns = `${NETNS_PREFIX}${owner}`;
    deleteNamespace(ns); // a leftover of an earlier process with our pid
    await ip(['netns', 'add', ns]);
    try {
      await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      await ip(['-n', ns, 'link', 'add', 'br0', 'type', 'bridge']);
      await ip(['-n', ns, 'link', 'set', 'br0', 'up']);
      const used = JSON.stringify(JSON.parse(await ip(['-j', '-4', 'addr'])));
      // Start at a place of our own, so two stacks starting at once rarely try the same /24;
      // the root link's name claims it (a second `link add cnpy<n>` fails).
      const start = owner % SUBNETS;
      let subnet = '';
      for (let k = 0; k < SUBNETS && !subnet; k++) {
        const i = (start + k) % SUBNETS;
        if (used.includes(`"${subnetOf(i)}.`)) continue;
        try {
          await ip(['link', 'add', `cnpy${i}`, 'type', 'veth', 'peer', 'name', 'up0', 'netns', ns]);
        } catch {
          continue;
        }
        subnet = subnetOf(i);
        await ip(['-n', ns, 'link', 'set', 'up0', 'master', 'br0', 'up']);
        await ip(['addr', 'add', `${subnet}.254/24`, 'dev', `cnpy${i}`]);
        await ip(['link', 'set', `cnpy${i}`, 'up']);
      }
      if (!subnet) throw new Error('no free /24 in 198.18.0.0/15');
      const uplink = `cnpy${(Number(subnet.split('.')[1]) - 18) * 256 + Number(subnet.split('.')[2])}`;
      const reaper = startReaper(owner, uplink);
      return new StackNetwork(ns, subnet, `${subnet}.254`, uplink, reaper);
    } catch (err) {
      deleteNamespace(ns);
      throw err;
    }
  }

  /** Joins a stack's network made by another process (the actuator's provisioner). */
  static join(info: StackNetworkInfo): StackNetwork {
    if (!OWNED.test(info.ns) || info.ns.includes('-', NETNS_PREFIX.length))
      throw new Error(`--netns: expected a stack namespace canopy-<pid>, got ${JSON.stringify(info.ns)}`);
    if (!/^198\.(18|19)\.(\d{1,3})$/.test(info.subnet) || Number(info.subnet.split('.')[2]) > 255)
      throw new Error(`--netns-subnet: expected the first three octets of a /24 in 198.18.0.0/15, got ${info.subnet}`);
    if (!listNamespaces().includes(info.ns)) throw new Error(`--netns: no namespace ${info.ns}`);
    return new StackNetwork(info.ns, info.subnet, `${info.subnet}.254`);
  }

  info(): StackNetworkInfo {
    return { ns: this.ns, subnet: this.subnet };
  }

  nodeNs(nodeId: string): string {
    return `${this.ns}-${nodeId}`;
  }

  async add(nodeId: string): Promise<NodeLink> {
    const ns = this.nodeNs(nodeId);
    deleteNamespace(ns);
    await ip(['netns', 'add', ns]);
    try {
      // The host number is claimed by the bridge side's link name (h<n>): a second one fails.
      let host = 0;
      for (let n = 1; n < 254 && !host; n++) {
        try {
          await ip(['-n', this.ns, 'link', 'add', `h${n}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
          host = n;
        } catch {
          /* taken */
        }
      }
      if (!host) throw new Error(`no free address in ${this.subnet}.0/24`);
      await ip(['-n', this.ns, 'link', 'set', `h${host}`, 'master', 'br0', 'up']);
      await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      await ip(['-n', ns, 'addr', 'add', `${this.subnet}.${host}/24`, 'dev', 'eth0']);
      await ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
      return { ns, host: `${this.subnet}.${host}`, exec: ['ip', 'netns', 'exec', ns] };
    } catch (err) {
      deleteNamespace(ns);
      throw err;
    }
  }

  async remove(nodeId: string): Promise<void> {
    deleteNamespace(this.nodeNs(nodeId));
  }

  /** The bridge side of a node's veth (traffic towards the node leaves the bridge through it). */
  async bridgePort(nodeId: string): Promise<string> {
    const links = JSON.parse(await ip(['-j', '-n', this.nodeNs(nodeId), 'link', 'show', 'eth0'])) as Array<{
      link_index?: number;
    }>;
    const peer = links[0]?.link_index;
    const mine = JSON.parse(await ip(['-j', '-n', this.ns, 'link', 'show'])) as Array<{
      ifindex: number;
      ifname: string;
    }>;
    const port = mine.find((l) => l.ifindex === peer)?.ifname;
    if (!port) throw new Error(`no link of ${nodeId} on the bridge`);
    return port;
  }

  /**
   * Impairs the link towards a node: `loss` percent of the UDP it receives
   * (or, `lossDirection: 'out'`, sends) over it dropped by an nftables rule
   * in its namespace (counted by the rule), a
   * `rate` limit (tc tbf) and, where the kernel has netem, `delay`/`jitter`
   * on the bridge's side of its veth. Replaces an earlier impairment.
   */
  async impair(nodeId: string, f: Impairment): Promise<void> {
    await this.clear(nodeId);
    const ns = this.nodeNs(nodeId);
    if (f.lossPercent) {
      // numgen over 10,000: hundredths of a percent.
      const drop = `numgen random mod 10000 < ${Math.round(f.lossPercent * 100)} counter drop`;
      if (f.lossDirection === 'out') {
        // On the wire: what the node's veth delivers to the bridge, dropped as it enters the bridge's port.
        // (In the node's own output hook the sender would see EPERM, which no real loss gives it.)
        const port = await this.bridgePort(nodeId);
        const table = `table netdev ${outTable(port)} {\n chain ingress {\n  type filter hook ingress device "${port}" priority 0;\n  ip protocol udp ${drop}\n }\n}\n`;
        const r = spawnSync('ip', ['netns', 'exec', this.ns, 'nft', '-f', '-'], { input: table, encoding: 'utf8' });
        if (r.status !== 0) throw new Error(`impair ${nodeId}: nft: ${r.stderr.trim()}`);
      } else {
        // What arrives over its link only (not the node's own loopback traffic).
        const rule = `iifname "eth0" meta l4proto udp ${drop}`;
        const table = `table inet ${FAULT_TABLE} {\n chain input {\n  type filter hook input priority 0;\n  ${rule}\n }\n}\n`;
        const r = spawnSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: table, encoding: 'utf8' });
        if (r.status !== 0) throw new Error(`impair ${nodeId}: nft: ${r.stderr.trim()}`);
      }
    }
    if (f.rate || f.delayMs !== undefined) {
      const port = await this.bridgePort(nodeId);
      const tc = async (args: string[]) => {
        try {
          await run('tc', ['-n', this.ns, 'qdisc', ...args], { timeout: 10_000 });
        } catch (err) {
          const msg = ((err as { stderr?: string }).stderr ?? String(err)).trim();
          throw new Error(
            /unknown/i.test(msg) && args.includes('netem')
              ? `impair ${nodeId}: this kernel has no sch_netem: delay and jitter cannot be imposed here (loss and rate can)`
              : `impair ${nodeId}: tc ${args.join(' ')}: ${msg}`,
          );
        }
      };
      let parent = ['root'];
      if (f.delayMs !== undefined) {
        await tc([
          'add',
          'dev',
          port,
          'root',
          'handle',
          '1:',
          'netem',
          'delay',
          `${f.delayMs}ms`,
          ...(f.jitterMs ? [`${f.jitterMs}ms`] : []),
        ]);
        parent = ['parent', '1:1'];
      }
      if (f.rate) {
        // A burst of at least 4 kB, or 20 ms at the rate: enough for a video frame's packets at once.
        const burst = Math.max(4096, Math.ceil(f.rate.bitsPerSecond / 8 / 50));
        await tc([
          'add',
          'dev',
          port,
          ...parent,
          'handle',
          '10:',
          'tbf',
          'rate',
          f.rate.text,
          'burst',
          String(burst),
          'latency',
          '400ms',
        ]);
      }
    }
  }

  /** Removes a node's impairment; nothing when it has none. */
  async clear(nodeId: string): Promise<void> {
    spawnSync('ip', ['netns', 'exec', this.nodeNs(nodeId), 'nft', 'delete', 'table', 'inet', FAULT_TABLE]);
    const port = await this.bridgePort(nodeId).catch(() => null);
    if (port) {
      spawnSync('ip', ['netns', 'exec', this.ns, 'nft', 'delete', 'table', 'netdev', outTable(port)]);
      spawnSync('tc', ['-n', this.ns, 'qdisc', 'del', 'dev', port, 'root']);
    }
  }

  /** Packets the loss rule has dropped on a node's link so far, either way (0 without one). */
  async dropped(nodeId: string): Promise<number> {
    const port = await this.bridgePort(nodeId).catch(() => null);
    return (
      ruleDrops(this.nodeNs(nodeId), ['inet', FAULT_TABLE]) +
      (port ? ruleDrops(this.ns, ['netdev', outTable(port)]) : 0)
    );
  }

  /** Removes every namespace of the owner (processes in them killed), the root veth with them, and the reaper. */
  destroy(): void {
    if (this.reaper) {
      try {
        process.kill(this.reaper, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    const owner = Number(OWNED.exec(this.ns)![1]);
    for (const ns of namespacesOf(owner).sort((a, b) => b.length - a.length)) deleteNamespace(ns);
    // A namespace is torn down asynchronously; deleting our end of the uplink (its peer goes too) is not.
    if (this.uplink) spawnSync('ip', ['link', 'del', this.uplink]);
  }
}

/** The table of the loss rule on a node's outgoing traffic: in the stack's namespace, named for the node's bridge port. */
function outTable(port: string): string {
  return `${FAULT_TABLE}_${port}`;
}

/** The packets an nftables table's counters have counted in namespace `ns` (0 without the table). */
function ruleDrops(ns: string, table: [family: string, name: string]): number {
  const r = spawnSync('ip', ['netns', 'exec', ns, 'nft', '-j', 'list', 'table', ...table], { encoding: 'utf8' });
  if (r.status !== 0) return 0;
  let n = 0;
  for (const x of (
    JSON.parse(r.stdout) as { nftables: Array<{ rule?: { expr: Array<{ counter?: { packets: number } }> } }> }
  ).nftables)
    for (const e of x.rule?.expr ?? []) n += e.counter?.packets ?? 0;
  return n;
}

/**
 * A detached shell that waits for `owner` to end, then deletes its
 * namespaces: the clean-up of a stack killed outright (SIGKILL), which runs
 * no handler. Shell, not node: it idles for the stack's whole life.
 */
function startReaper(owner: number, uplink: string): number | undefined {
  const script = [
    `while kill -0 ${owner} 2>/dev/null; do sleep 0.5; done`,
    `for ns in $(ip netns list | cut -d' ' -f1 | grep -E '^${NETNS_PREFIX}${owner}(-|$)' | sort -r); do`,
    '  for p in $(ip netns pids "$ns"); do kill -9 "$p" 2>/dev/null; done',
    '  ip netns del "$ns"',
    'done',
    `ip link del ${uplink} 2>/dev/null`,
  ].join('\n');
  const child = spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' });
  child.unref();
  return child.pid;
}

/** True when this kernel has netem (delay, jitter): tried on a throwaway namespace's loopback. */
export function netemAvailable(): boolean {
  const ns = `${NETNS_PREFIX}probe${process.pid}`;
  try {
    execFileSync('ip', ['netns', 'add', ns], { stdio: 'ignore' });
    return spawnSync('tc', ['-n', ns, 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '1ms']).status === 0;
  } catch {
    return false;
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
  }
}
