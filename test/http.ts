import type { Express } from 'express';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';

/** Serves an express app on an ephemeral loopback port for one test. */
export async function serve(app: Express): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
