import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertId } from '../topology/index.ts';

export interface ScrapeTarget {
  nodeId: string;
  /** host:port of the node's /metrics. */
  address: string;
}

/**
 * The Prometheus file_sd files of the subtrees the actuator adds, one per
 * subtree under <dir>/<job>/, written atomically (rename) so Prometheus never
 * reads half a file.
 */
export class TargetFiles {
  constructor(
    private readonly dir: string,
    private readonly job: string,
  ) {}

  private path(subtree: string): string {
    return join(this.dir, this.job, `${assertId('slot', subtree)}.json`);
  }

  write(tree: string, subtree: string, targets: ScrapeTarget[]): void {
    assertId('tree', tree);
    const groups = targets.map((t) => ({
      targets: [t.address],
      labels: { tree_id: tree, node_id: assertId('node', t.nodeId), node_type: 'egress', subtree },
    }));
    mkdirSync(join(this.dir, this.job), { recursive: true });
    const path = this.path(subtree);
    writeFileSync(`${path}.tmp`, JSON.stringify(groups, null, 2));
    renameSync(`${path}.tmp`, path);
  }

  remove(subtree: string): void {
    rmSync(this.path(subtree), { force: true });
  }
}
