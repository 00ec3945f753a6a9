import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import type { NodeNetwork } from '../../process/netns.ts';
import { freePort } from '../../process/ports.ts';
import { killGroup, processAlive, stopGroups } from '../../process/signals.ts';
import { assertId, ID_PATTERN } from '../../topology/index.ts';
import type { ScrapeTarget } from '../targets.ts';
import {
  ProvisionerError,
  type Provisioner,
  type RunningSubtree,
  type SubtreeNode,
  type SubtreeSpec,
} from './provisioner.ts';

const CANOPY_BIN = fileURLToPath(new URL('../../bin/canopy.mjs', import.meta.url));

export interface LocalProvisionerOptions {
  /** Where each subtree's state file (pids, ports) and logs live; survives an actuator restart. */
  stateDir: string;
  redisUrl: string;
  /** Address other nodes reach the egress nodes at. */
  advertiseHost?: string;
  /** First UDP port of the egress port pools; each node takes `portsPerNode` from here on. */
  portBase?: number;
  portsPerNode?: number;
  /** Extra environment for the egress processes. */
  env?: NodeJS.ProcessEnv;
  /** A network namespace per node (the local stack's `--netns`); the node then listens and is reached at its own address. */
  network?: NodeNetwork;
}

const stateSchema = z.object({
  tree: z.string().regex(ID_PATTERN),
  subtree: z.string().regex(ID_PATTERN),
  // Kept so the actuator can rebuild its record after Redis lost its data (absent in files of older versions).
  slot: z.string().regex(ID_PATTERN).optional(),
  createdAt: z.number().int().nonnegative().optional(),
  nodes: z.array(
    z.object({
      id: z.string().regex(ID_PATTERN),
      pid: z.number().int().positive(),
      httpPort: z.number().int(),
      /** Its address in a namespace of its own; absent: advertiseHost (loopback). */
      host: z.ipv4().optional(),
    }),
  ),
});
type SubtreeFile = z.infer<typeof stateSchema>;

/**
 * Egress subtrees as `canopy node egress` processes on this machine. Each runs
 * in its own process group and is recorded in a state file, so a restarted
 * actuator still finds (and can stop) what an earlier one started.
 */
export class LocalProvisioner implements Provisioner {
  readonly name = 'local';
  private readonly portBase: number;
  private readonly portsPerNode: number;

  constructor(private readonly o: LocalProvisionerOptions) {
    mkdirSync(o.stateDir, { recursive: true });
    this.portBase = o.portBase ?? 40_000;
    this.portsPerNode = o.portsPerNode ?? 100;
  }

  private file(subtree: string): string {
    return join(this.o.stateDir, `${assertId('slot', subtree)}.json`);
  }

  private read(subtree: string): SubtreeFile | null {
    try {
      return stateSchema.parse(JSON.parse(readFileSync(this.file(subtree), 'utf8')));
    } catch {
      return null;
    }
  }

  async create(spec: SubtreeSpec): Promise<void> {
    const existing = this.read(spec.subtree);
    if (existing && existing.nodes.length === spec.size && existing.nodes.every((n) => processAlive(n.pid))) return;
    if (existing) await this.delete(spec.tree, spec.subtree);
    const nodes: SubtreeFile['nodes'] = [];
    const createdAt = Date.now();
    try {
      for (let i = 0; i < spec.size; i++) {
        const id = assertId('node', `${spec.subtree}-${i}`);
        // In a namespace of its own the defaults are free; on the shared loopback, free ports.
        const link = await this.o.network?.add(id);
        const [httpPort, audioPort, videoPort] = link
          ? [7073, 5002, 5004]
          : [await freePort(), await freePort(), await freePort()];
        const host = link?.host ?? this.o.advertiseHost ?? '127.0.0.1';
        const poolStart = this.nextPoolRange();
        const log = openSync(join(this.o.stateDir, `${id}.log`), 'a');
        const [command, ...prefix] = link ? [...link.exec, process.execPath] : [process.execPath];
        const child = spawn(
          command!,
          [
            ...prefix,
            CANOPY_BIN,
            'node',
            'egress',
            '--tree-id',
            spec.tree,
            '--node-id',
            id,
            '--redis-url',
            this.o.redisUrl,
            '--port',
            String(httpPort),
            '--listen-host',
            link?.host ?? '127.0.0.1',
            '--advertise-host',
            host,
            ...(link ? ['--forwarder-bind', link.host, '--ice-bind', link.host] : []),
            '--forwarder-audio-port',
            String(audioPort),
            '--forwarder-video-port',
            String(videoPort),
            '--port-range',
            `${poolStart}-${poolStart + this.portsPerNode - 1}`,
          ],
          { detached: true, stdio: ['ignore', log, log], env: { ...process.env, ...this.o.env } },
        );
        closeSync(log);
        child.unref();
        if (!child.pid) throw new Error(`could not start egress node ${id}`);
        nodes.push({ id, pid: child.pid, httpPort, ...(link ? { host: link.host } : {}) });
        // Recorded as each starts: an actuator killed mid-create leaves nothing it cannot find.
        this.write({ tree: spec.tree, subtree: spec.subtree, slot: spec.slot, createdAt, nodes });
      }
    } catch (err) {
      for (const n of nodes) killGroup(n.pid, 'SIGKILL');
      for (let i = 0; i < spec.size; i++) await this.o.network?.remove(`${spec.subtree}-${i}`);
      rmSync(this.file(spec.subtree), { force: true });
      throw new ProvisionerError('create', (err as Error).message);
    }
  }

  private write(state: SubtreeFile): void {
    const path = this.file(state.subtree);
    writeFileSync(`${path}.tmp`, JSON.stringify(state));
    renameSync(`${path}.tmp`, path);
  }

  plannedTargets(spec: SubtreeSpec): ScrapeTarget[] {
    const host = this.o.advertiseHost ?? '127.0.0.1';
    return (this.read(spec.subtree)?.nodes ?? []).map((n) => ({
      nodeId: n.id,
      address: `${n.host ?? host}:${n.httpPort}`,
    }));
  }

  async waitReady(spec: SubtreeSpec, timeoutMs: number): Promise<SubtreeNode[]> {
    const deadline = Date.now() + timeoutMs;
    const state = this.read(spec.subtree);
    if (!state) throw new ProvisionerError('wait-ready', `subtree ${spec.subtree} is not running`);
    const pending = new Set(state.nodes.map((n) => n.id));
    while (pending.size) {
      for (const n of state.nodes) {
        if (!pending.has(n.id)) continue;
        if (!processAlive(n.pid))
          throw new ProvisionerError(
            'wait-ready',
            `egress node ${n.id} exited (see ${join(this.o.stateDir, `${n.id}.log`)})`,
          );
        const ok = await fetch(`http://${n.host ?? '127.0.0.1'}:${n.httpPort}/readyz`, {
          signal: AbortSignal.timeout(1_000),
        }).then(
          (r) => r.ok,
          () => false,
        );
        if (ok) pending.delete(n.id);
      }
      if (!pending.size) break;
      if (Date.now() > deadline)
        throw new ProvisionerError('wait-ready', `not ready after ${timeoutMs} ms: ${[...pending].join(', ')}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    return state.nodes.map((n) => ({ id: n.id }));
  }

  async delete(_tree: string, subtree: string): Promise<void> {
    const state = this.read(subtree);
    if (state) {
      const pids = state.nodes.map((n) => n.pid);
      await stopGroups(() => pids);
      for (const n of state.nodes) await this.o.network?.remove(n.id);
    }
    rmSync(this.file(subtree), { force: true });
  }

  async list(tree?: string): Promise<RunningSubtree[]> {
    const out: RunningSubtree[] = [];
    for (const f of readdirSync(this.o.stateDir)) {
      if (!f.endsWith('.json')) continue;
      const s = this.read(f.slice(0, -5));
      if (s && (!tree || s.tree === tree) && s.nodes.some((n) => processAlive(n.pid)))
        out.push({
          tree: s.tree,
          subtree: s.subtree,
          slot: s.slot,
          createdAt: s.createdAt,
          nodes: s.nodes.map((n) => n.id),
        });
    }
    return out;
  }

  /** Pool ranges are handed out in turn from portBase, so local nodes never share a port. */
  private nextPoolRange(): number {
    const counter = join(this.o.stateDir, 'next-pool');
    let i = 0;
    try {
      i = Number(readFileSync(counter, 'utf8')) || 0;
    } catch {
      i = 0;
    }
    const span = Math.floor((65_000 - this.portBase) / this.portsPerNode);
    writeFileSync(counter, String((i + 1) % span));
    return this.portBase + (i % span) * this.portsPerNode;
  }
}
