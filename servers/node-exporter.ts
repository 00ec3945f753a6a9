import { startChild, type Child } from '../process/child.ts';
import { onFreePort } from '../process/ports.ts';
import { httpOk } from '../process/wait.ts';

export interface RunningNodeExporter {
  child: Child;
  url: string;
}

/** In a node's network namespace: the command prefix that runs in it and the address it listens on. */
export interface InNamespace {
  exec: string[];
  host: string;
}

/**
 * Debian's prometheus-node-exporter on a loopback port of its own or, in a
 * node's namespace, on its default port (9100) at the node's address: its
 * network counters are then that node's link.
 */
export async function startNodeExporter(port?: number, ns?: InNamespace): Promise<RunningNodeExporter> {
  if (ns) return startOn(port ?? 9100, ns);
  return port === undefined ? onFreePort((p) => startOn(p)) : startOn(port);
}

async function startOn(p: number, ns?: InNamespace): Promise<RunningNodeExporter> {
  const host = ns?.host ?? '127.0.0.1';
  const url = `http://${host}:${p}`;
  const args = [`--web.listen-address=${host}:${p}`];
  const [command, ...prefix] = ns ? [...ns.exec, 'prometheus-node-exporter'] : ['prometheus-node-exporter'];
  const child = await startChild('node_exporter', command!, {
    args: [...prefix, ...args],
    ready: () => httpOk(`${url}/metrics`),
    // In a namespace of its own nobody else can hold the port; /proc/net here is another namespace's.
    port: ns ? undefined : p,
  });
  return { child, url };
}
