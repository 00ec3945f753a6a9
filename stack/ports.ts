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
