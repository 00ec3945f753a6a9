import { createServer } from 'node:net';

/**
 * A loopback TCP port nobody listens on right now. Asking the kernel for port 0
 * keeps us clear of a Redis or Prometheus already running on its default port.
 */
export function freePort(): Promise<number> {
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
