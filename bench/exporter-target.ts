/**
 * The egress exporter under test, in a process of its own so the scraper does
 * not share its event loop or heap. Driven over the fork IPC channel.
 */
import express from 'express';
import type { AddressInfo } from 'node:net';
import {
  createEgressMetrics,
  forgetEgressSession,
  metricsRouter,
  recordPortPool,
  type EgressMetrics,
  type SessionStreams,
} from '../exporters/index.ts';

export type TargetRequest = { type: 'rss' } | { type: 'churn'; cycles: number; from: number };
export type TargetReply =
  | { type: 'ready'; port: number }
  | { type: 'rss'; rss: number; heapUsed: number }
  | { type: 'churned' };

function session(i: number): SessionStreams {
  return { sessionId: `sess-${i}`, audioSsrc: 1_000_000 + 2 * i, videoSsrc: 1_000_001 + 2 * i };
}

function startSession(m: EgressMetrics, s: SessionStreams, i: number): void {
  m.activeViewers.set({ session_id: s.sessionId }, i % 40);
  m.rtpPacketsReceived.inc({ stream_type: 'audio', ssrc: String(s.audioSsrc) }, 50 * (i + 1));
  m.rtpPacketsReceived.inc({ stream_type: 'video', ssrc: String(s.videoSsrc) }, 250 * (i + 1));
  m.rtpBytesReceived.inc({ stream_type: 'audio', ssrc: String(s.audioSsrc) }, 8_000 * (i + 1));
  m.rtpBytesReceived.inc({ stream_type: 'video', ssrc: String(s.videoSsrc) }, 300_000 * (i + 1));
}

function settle(): { rss: number; heapUsed: number } {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc');
  for (let i = 0; i < 4; i++) gc();
  const u = process.memoryUsage();
  return { rss: u.rss, heapUsed: u.heapUsed };
}

const sessions = Number(process.env.BENCH_SESSIONS ?? '2000');
const m = createEgressMetrics();
for (let i = 0; i < sessions; i++) startSession(m, session(i), i);
m.activeMountpoints.set(sessions);
recordPortPool(m, sessions, sessions);

const app = express();
app.use(metricsRouter(m.node));
const server = app.listen(0, '127.0.0.1', () => {
  const reply: TargetReply = { type: 'ready', port: (server.address() as AddressInfo).port };
  process.send!(reply);
});

process.on('message', (msg: TargetRequest) => {
  if (msg.type === 'rss') {
    process.send!({ type: 'rss', ...settle() } satisfies TargetReply);
  } else if (msg.type === 'churn') {
    // Sessions beyond the live 2,000 start and stop; the live ones stay.
    for (let i = msg.from; i < msg.from + msg.cycles; i++) {
      const s = session(sessions + i);
      startSession(m, s, i);
      forgetEgressSession(m, s);
    }
    process.send!({ type: 'churned' } satisfies TargetReply);
  }
});
process.on('disconnect', () => process.exit(0));
