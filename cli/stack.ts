import { Command, Option } from 'commander';
import { basename, join, resolve } from 'node:path';
import { startProgress } from '../stack/progress.ts';
import { writeRunReport } from '../stack/report.ts';
import { loadScenario, runScenario, type Scenario } from '../stack/scenario.ts';
import { releaseWebRtc } from '../viewers/whep-client.ts';
import { startStack, type Stack } from '../stack/stack.ts';

export function stackCommand(): Command {
  return new Command('stack')
    .description(
      'start the local stack (Redis, Prometheus, Alertmanager, node_exporter, injection, relays, egress nodes, actuator) and run a load scenario',
    )
    .argument('[scenario]', 'a scenario in stack/scenarios/ (default, none) or a path to a YAML file', 'default')
    .addOption(
      new Option('--keep-running', 'after the scenario, keep the stack running until Ctrl-C')
        .env('CANOPY_STACK_KEEP_RUNNING')
        .default(false),
    )
    .addOption(
      new Option(
        '--report-dir <path>',
        'where the run report (chart.svg, summary.txt) goes (default: .canopy/reports/<time>)',
      ).env('CANOPY_STACK_REPORT_DIR'),
    )
    .addOption(
      new Option('--no-progress', 'no live progress line while the scenario runs').env('CANOPY_STACK_NO_PROGRESS'),
    )
    .addOption(
      new Option(
        '--netns',
        "each node in a network namespace of its own, on a bridge (needs root, ip, nft, tc); a scenario's stack: { netns: true } does the same",
      )
        .env('CANOPY_STACK_NETNS')
        .default(false),
    )
    .addOption(new Option('--verbose', 'log each component as it starts').env('CANOPY_STACK_VERBOSE').default(false))
    .action(
      async (
        name: string,
        o: { keepRunning: boolean; verbose: boolean; reportDir?: string; progress: boolean; netns: boolean },
      ) => {
        // Validate the scenario before starting anything.
        const scenario: Scenario = loadScenario(name);
        const keepRunning = o.keepRunning || scenario.name === 'none';
        // On a terminal, clear the progress line before a log line.
        const log = (line: string) => console.log(`${process.stdout.isTTY ? '\r\x1b[2K' : ''}[stack] ${line}`);
        let stack: Stack | undefined;
        let interrupted = false;
        let resolveSignal: () => void = () => {};
        const signalled = new Promise<void>((r) => (resolveSignal = r));
        const onSignal = (sig: NodeJS.Signals) => {
          if (interrupted || !stack) return;
          interrupted = true;
          log(`${sig}: stopping`);
          resolveSignal();
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
        try {
          const shape = o.netns ? { ...scenario.stack, netns: true } : scenario.stack;
          const starting = startStack({ log: o.verbose ? log : undefined, shape });
          stack = await Promise.race([starting, signalled.then(() => undefined)]);
          // Interrupted while starting: let the start finish (or fail, cleaning up), then stop it all.
          if (!stack) stack = await starting.catch(() => undefined);
          if (interrupted || !stack) return;
          console.log(`prometheus: ${stack.urls.prometheus}`);
          console.log(`alertmanager: ${stack.urls.alertmanager}`);
          console.log(`actuator: ${stack.urls.actuator}`);
          console.log(`redis: ${stack.urls.redis}`);
          if (stack.network) console.log(`network: ${stack.network.ns} ${stack.network.subnet}.0/24`);
          if (scenario.name !== 'none') {
            const startedAt = Date.now();
            const stopProgress = o.progress
              ? startProgress(stack.urls.prometheus, stack.urls.actuator, process.stdout)
              : () => {};
            const announce = (line: string) => console.log(`${process.stdout.isTTY ? '\r\x1b[2K' : ''}${line}`);
            const run = runScenario(stack, scenario, log, announce);
            const r = await Promise.race([run, signalled.then(() => undefined)]).finally(stopProgress);
            if (r) {
              log(
                `scale-out subtrees: ${Object.keys(r.subtrees).join(', ') || 'none'}; viewers placed: ${Object.entries(
                  r.placed,
                )
                  .map(([k, v]) => `${k}=${v}`)
                  .join(' ')}`,
              );
              const dir = resolve(
                o.reportDir ?? join('.canopy', 'reports', new Date(startedAt).toISOString().replace(/[:.]/g, '-')),
              );
              const rep = await writeRunReport(stack.urls.prometheus, scenario.name, r, startedAt, Date.now(), dir);
              console.log(`report: ${dir} (${basename(rep.chart)}, ${basename(rep.summary)})`);
            } else run.catch(() => {});
          }
          if (keepRunning && !interrupted) {
            log('running until Ctrl-C');
            await signalled;
          }
        } finally {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
          if (stack) {
            await stack.stop();
            log('stopped; temp dir removed');
          }
          // The scenario's viewers are closed: node-datachannel's threads would keep the command alive.
          releaseWebRtc();
        }
      },
    );
}
