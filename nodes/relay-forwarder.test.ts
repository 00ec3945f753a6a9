import { afterEach, describe, expect, it } from 'vitest';
import { createRelayMetrics, renderExposition } from '../exporters/index.ts';
import { ForwarderClient } from '../forwarder/client.ts';
import { startForwarder } from '../servers/forwarder.ts';
import { Receiver, rtpPacket, Sender } from '../test/rtp.ts';
import { waitUntil } from '../process/wait.ts';
import { sample } from '../test/exposition-parser.ts';
import { forwarderCollector } from './relay-forwarder.ts';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('relay exporter fed by the real forwarder', () => {
  it('exposes STATS as the relay families, and state 0 with counters kept while the forwarder is down', async () => {
    const f = await startForwarder();
    cleanups.push(() => f.child.stop());
    const client = new ForwarderClient({ socketPath: f.socketPath, requestTimeoutMs: 500 });
    cleanups.push(() => client.close());
    const [a, v] = [await Receiver.open(), await Receiver.open()];
    const tx = new Sender(f.videoPort);
    cleanups.push(() => {
      a.close();
      v.close();
      tx.close();
    });
    await client.add({ id: 'egress-1', host: '127.0.0.1', audioPort: a.port, videoPort: v.port });
    for (let i = 0; i < 10; i++) await tx.send(rtpPacket(2222, i, 1200));
    await waitUntil('packets at the destination', () => v.count() === 10, { timeoutMs: 5_000, intervalMs: 20 });

    const m = createRelayMetrics({ defaultMetrics: false });
    m.node.collectors.push(forwarderCollector(m, client));
    const up = await renderExposition(m.node);
    expect(sample(up, 'media_tree_relay_forwarder_state', { pipeline: 'audio' })).toBe(3);
    expect(sample(up, 'media_tree_relay_forwarder_state', { pipeline: 'video' })).toBe(3);
    expect(sample(up, 'media_tree_relay_destinations_count', { stream_type: 'video' })).toBe(1);
    expect(sample(up, 'media_tree_relay_rtp_packets_forwarded_total', { stream_type: 'video' })).toBe(10);
    expect(sample(up, 'media_tree_relay_rtp_bytes_forwarded_total', { stream_type: 'video' })).toBe(12_000);
    expect(sample(up, 'media_tree_relay_rtp_packets_forwarded_total', { stream_type: 'audio' })).toBe(0);

    await f.child.stop();
    const down = await renderExposition(m.node);
    expect(sample(down, 'media_tree_relay_forwarder_state', { pipeline: 'audio' })).toBe(0);
    expect(sample(down, 'media_tree_relay_forwarder_state', { pipeline: 'video' })).toBe(0);
    expect(sample(down, 'media_tree_relay_rtp_packets_forwarded_total', { stream_type: 'video' })).toBe(10);
    expect(down).not.toMatch(/media_tree_exporter_collect_failures_total\{collector="forwarder_stats"\} [1-9]/);
  });
});
