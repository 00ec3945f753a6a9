import { type AnsweringViewer, answerOffer } from '../viewers/answer-client.ts';
import type { Stream, StreamCounts } from '../viewers/receiver.ts';
import { JanusError, type JanusSession } from './janus-api.ts';

/**
 * A viewer of a Janus streaming mountpoint, server-offer flow (all Janus
 * 1.1.2 can do): `watch` brings Janus's offer, node-datachannel answers it
 * (`viewers/answer-client.ts`, the same receiving code as the WHEP viewer),
 * `start` hands Janus the answer with every candidate in it.
 */

export interface JanusViewer {
  counts(): Record<Stream, StreamCounts>;
  readonly ended: Promise<string>;
  close(): Promise<void>;
}

export async function watchJanus(
  session: JanusSession,
  mountpoint: number,
  o: { bindAddress: string; streamOfMid: Record<string, Stream>; timeoutMs?: number },
): Promise<JanusViewer> {
  const handle = await session.attach();
  let pc: AnsweringViewer | undefined;
  try {
    const offered = await session.ask(handle, { request: 'watch', id: mountpoint });
    if (offered.jsep?.type !== 'offer') throw new JanusError(`watch brought no offer: ${JSON.stringify(offered)}`);
    pc = await answerOffer(offered.jsep.sdp, o);
    const viewer = pc;
    session.onHangup(handle, () => viewer.close());
    await session.ask(handle, { request: 'start' }, { type: 'answer', sdp: pc.answer, trickle: false });
    await pc.connected();
    return {
      counts: () => viewer.counts(),
      ended: viewer.ended,
      close: async () => {
        viewer.close();
        await session.detach(handle);
      },
    };
  } catch (err) {
    pc?.close();
    await session.detach(handle);
    throw err;
  }
}
