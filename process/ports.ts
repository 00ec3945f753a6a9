import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

/**
 * A loopback port nobody listens on right now, on TCP and on UDP (the
 * forwarder's RTP ports are UDP, and the kernel hands out TCP and UDP
 * ephemeral ports independently). Asking the kernel for port 0 keeps us clear
 * of a Redis or Prometheus already running on its default port.
 */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const p = await freeTcpPort();
    if (await udpFree(p)) return p;
  }
  throw new Error('no port free on both TCP and UDP after 20 tries');
}

function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

function udpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.once('error', () => {
      s.close();
      resolve(false);
    });
    s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** Inodes of the TCP sockets (IPv4 and IPv6, any local address) listening on `port` in this network namespace. */
function listeningInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st ... inode; st 0A is LISTEN.
      const cols = line.trim().split(/\s+/);
      if (cols.length > 9 && cols[3] === '0A' && parseInt(cols[1]!.split(':')[1]!, 16) === port) inodes.add(cols[9]!);
    }
  }
  return inodes;
}

/** True when something listens on TCP `port`. */
export function portTaken(port: number): boolean {
  return listeningInodes(port).size > 0;
}

/**
 * True when process `pid` itself holds the socket listening on TCP `port`:
 * an answer on the port is then ours, not another stack's that took the port
 * between freePort() and our bind.
 */
export function listensOn(pid: number, port: number): boolean {
  const inodes = listeningInodes(port);
  if (!inodes.size) return false;
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return false;
  }
  return fds.some((fd) => {
    try {
      return inodes.has(/^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1] ?? '');
    } catch {
      return false;
    }
  });
}

/**
 * Starts something on a free port, and on another one when the start failed
 * because someone else took that port between freePort() and the bind.
 */
export async function onFreePort<T>(start: (port: number) => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      return await start(port);
    } catch (err) {
      // Our child is stopped by now: a listener left on the port is someone else's.
      if (attempt >= attempts || !portTaken(port)) throw err;
    }
  }
}
