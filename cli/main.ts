import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { actuatorCommand } from './actuator-command.ts';
import { benchCommand } from './bench.ts';
import { nodeCommand } from './node.ts';
import { renderCommand } from './render.ts';
import { stackCommand } from './stack.ts';
import { viewersCommand } from './viewers.ts';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

export function program(): Command {
  return new Command('canopy')
    .description('Prometheus-native monitoring and autoscaling for live media distribution trees')
    .version(pkg.version)
    .showHelpAfterError()
    .addCommand(actuatorCommand())
    .addCommand(benchCommand())
    .addCommand(nodeCommand())
    .addCommand(renderCommand())
    .addCommand(stackCommand())
    .addCommand(viewersCommand());
}

export async function main(argv: string[]): Promise<void> {
  try {
    await program().parseAsync(argv);
  } catch (err) {
    console.error(`canopy: ${(err as Error).message}`);
    process.exitCode = 1;
  }
}
