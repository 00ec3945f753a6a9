/**
 * Chromium as a WHIP publisher, for the scripts run inside a namespace
 * (browser-publish.ts, bench/first-frame-run.ts): browser-publisher.html,
 * served from a loopback origin of its own, driven through
 * window.canopyPublisher. The browser needs FAKE_MEDIA_ARGS (browser.ts).
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Page } from 'playwright-core';
import type { PublisherStats, PublishResult } from './browser.ts';
import type { Browser } from './browser-stack.ts';

const PAGE = readFileSync(new URL('./browser-publisher.html', import.meta.url), 'utf8');

export interface PublisherPage {
  offer(url: string, token: string): Promise<PublishResult['whip']>;
  connect(): Promise<void>;
  stats(): Promise<PublisherStats>;
  stop(): Promise<number>;
}
declare const window: { canopyPublisher: PublisherPage };

export interface ServedPage {
  url: string;
  close(): Promise<void>;
}

/** One page on 127.0.0.1 (any path), answered by a server of this process's. */
export async function servePage(html: string): Promise<ServedPage> {
  const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(html));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface WhipPublisher {
  page: Page;
  whip: PublishResult['whip'];
  /** Closes the page server (the page goes with the browser). */
  close(): Promise<void>;
}

/**
 * Opens the publisher page and POSTs its offer to `whipUrl`. The page comes from
 * a loopback server of its own: a page Chromium did not fetch from a loopback
 * address (one a test fulfils, or a public site) needs the Local Network Access
 * permission to reach the injection. A 201's answer is set (media starts); a
 * refused POST throws.
 */
export async function openWhipPublisher(browser: Browser, whipUrl: string, token: string): Promise<WhipPublisher> {
  const served = await servePage(PAGE);
  try {
    const page = await browser.context.newPage();
    await page.goto(`${served.url}/publish.html`);
    const whip = await page.evaluate(([url, t]) => window.canopyPublisher.offer(url!, t!), [whipUrl, token]);
    if (whip.status !== 201) throw new Error(`WHIP POST: ${whip.status} ${whip.error}`);
    await page.evaluate(() => window.canopyPublisher.connect());
    return { page, whip, close: served.close };
  } catch (err) {
    await served.close();
    throw err;
  }
}
