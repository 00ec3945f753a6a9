import { watch } from '../viewers/whep-client.ts';

/**
 * A WHEP viewer in a process of its own, for tests that kill it (SIGKILL: no
 * DELETE, no DTLS close) to see the egress notice it is gone. Usage:
 * `tsx test/whep-viewer-child.ts <whep url>`; prints `connected <location>`,
 * then `video <packets>` every 200 ms.
 */
const url = process.argv[2];
if (!url) {
  process.stderr.write('usage: whep-viewer-child.ts <whep url>\n');
  process.exit(2);
}
const v = await watch(url);
process.stdout.write(`connected ${v.location}\n`);
setInterval(() => process.stdout.write(`video ${v.counts().video.packets}\n`), 200);
