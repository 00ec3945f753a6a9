import { startChild, type Child } from '../process/child.ts';
import { onFreePort } from '../process/ports.ts';
import { httpOk } from '../process/wait.ts';

export interface RunningNodeExporter {
  child: Child;
  url: string;
}

/** Debian's prometheus-node-exporter on a loopback port of its own. */
export async function startNodeExporter(port?: number): Promise<RunningNodeExporter> {
  return port === undefined ? onFreePort(startOn) : startOn(port);
}

async function startOn(p: number): Promise<RunningNodeExporter> {
  const url = `http://127.0.0.1:${p}`;
  const child = await startChild('node_exporter', 'prometheus-node-exporter', {
    args: [`--web.listen-address=127.0.0.1:${p}`],
    ready: () => httpOk(`${url}/metrics`),
    port: p,
  });
  return { child, url };
}
