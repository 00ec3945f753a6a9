import { describe, expect, it } from 'vitest';
import {
  createEgressMetrics,
  createInjectionMetrics,
  forgetEgressSession,
  forgetInjectionSession,
  renderExposition,
  type SessionStreams,
} from './index.ts';
import { parseExposition } from '../test/exposition-parser.ts';

const CYCLES = 100_000;
const LIVE = 25;

function sessionAt(i: number): SessionStreams {
  return { sessionId: `sess-${i}`, audioSsrc: 2 * i + 1, videoSsrc: 2 * i + 2 };
}

/** Session ids and SSRCs that any series of the exposition still carries. */
function labelledWith(text: string): { sessions: Set<string>; ssrcs: Set<string> } {
  const sessions = new Set<string>();
  const ssrcs = new Set<string>();
  for (const f of parseExposition(text).values()) {
    for (const s of f.samples) {
      if (s.labels.session_id !== undefined) sessions.add(s.labels.session_id);
      if (s.labels.ssrc !== undefined) ssrcs.add(s.labels.ssrc);
    }
  }
  return { sessions, ssrcs };
}

function expectedLive(ids: number[]) {
  return {
    sessions: new Set(ids.map((i) => sessionAt(i).sessionId)),
    ssrcs: new Set(ids.flatMap((i) => [String(sessionAt(i).audioSsrc), String(sessionAt(i).videoSsrc)])),
  };
}

describe(`series churn: ${CYCLES} session start/stop cycles`, () => {
  it('egress keeps only the live sessions, viewers and SSRCs', async () => {
    const m = createEgressMetrics({ defaultMetrics: false });
    const live: number[] = [];
    for (let i = 0; i < CYCLES; i++) {
      const s = sessionAt(i);
      m.activeViewers.set({ session_id: s.sessionId }, i % 7);
      m.rtpPacketsReceived.inc({ stream_type: 'audio', ssrc: String(s.audioSsrc) }, 50);
      m.rtpPacketsReceived.inc({ stream_type: 'video', ssrc: String(s.videoSsrc) }, 250);
      m.rtpBytesReceived.inc({ stream_type: 'audio', ssrc: String(s.audioSsrc) }, 8000);
      m.rtpBytesReceived.inc({ stream_type: 'video', ssrc: String(s.videoSsrc) }, 300000);
      live.push(i);
      if (live.length > LIVE) forgetEgressSession(m, sessionAt(live.shift()!));
      // An occasional scrape mid-churn, as Prometheus would do.
      if (i % 20_000 === 0) await renderExposition(m.node);
    }
    const text = await renderExposition(m.node);
    expect(labelledWith(text)).toEqual(expectedLive(live));
    const viewers = parseExposition(text).get('media_tree_egress_active_viewers')!;
    expect(viewers.samples).toHaveLength(LIVE);
    expect(parseExposition(text).get('media_tree_egress_rtp_packets_received_total')!.samples).toHaveLength(2 * LIVE);
  });

  it('injection keeps only the live sessions and SSRCs', async () => {
    const m = createInjectionMetrics({ defaultMetrics: false });
    const live: number[] = [];
    for (let i = 0; i < CYCLES; i++) {
      const s = sessionAt(i);
      for (const [st, ssrc] of [
        ['audio', s.audioSsrc],
        ['video', s.videoSsrc],
      ] as const) {
        m.rtpPacketsSent.inc({ stream_type: st, session_id: s.sessionId, ssrc: String(ssrc) }, 10);
        m.rtpBytesSent.inc({ stream_type: st, session_id: s.sessionId }, 1000);
      }
      live.push(i);
      if (live.length > LIVE) forgetInjectionSession(m, sessionAt(live.shift()!));
    }
    const text = await renderExposition(m.node);
    expect(labelledWith(text)).toEqual(expectedLive(live));
    expect(parseExposition(text).get('media_tree_injection_rtp_bytes_sent_total')!.samples).toHaveLength(2 * LIVE);
  });

  it('forgetting an unknown session changes nothing', async () => {
    const m = createEgressMetrics({ defaultMetrics: false });
    m.activeViewers.set({ session_id: 'sess-1' }, 4);
    const before = await renderExposition(m.node);
    forgetEgressSession(m, { sessionId: 'sess-404', audioSsrc: 9, videoSsrc: 10 });
    expect(await renderExposition(m.node)).toBe(before);
  });
});
