import { Command } from 'commander';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ROOT } from '../rules/jsonnet.ts';
import { renderAll, staleFiles } from '../rules/render.ts';
import { clusterRender } from './cluster-render.ts';

export function renderCommand(): Command {
  return new Command('render')
    .description(
      'render the rule pack, the Prometheus configs, the dashboards and the cluster objects from their Jsonnet sources',
    )
    .option('--check', 'write nothing; exit 1 if a committed file differs from its source', false)
    .action((o: { check: boolean }) => {
      const rendered = renderAll(!o.check, clusterRender());
      if (o.check) {
        const stale = staleFiles(rendered);
        if (stale.length) {
          console.error(`stale generated files (run "canopy render"): ${stale.join(', ')}`);
          process.exitCode = 1;
        } else console.log(`${rendered.size} generated files up to date`);
        return;
      }
      for (const [path, text] of rendered) {
        mkdirSync(dirname(join(ROOT, path)), { recursive: true });
        writeFileSync(join(ROOT, path), text);
      }
      console.log(`rendered ${[...rendered.keys()].join(', ')}`);
    });
}
