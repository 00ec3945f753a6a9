import { describe, expect, it } from 'vitest';
import { OfferError, parseOffer } from './whep-sdp.ts';

/** A browser's WHIP offer as Chromium writes it (sendonly transceivers, many codecs, RTX, extensions). */
const CHROMIUM_PUBLISHER = [
  'v=0',
  'o=- 4611731400430051336 2 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'a=group:BUNDLE 0 1',
  'a=extmap-allow-mixed',
  'a=msid-semantic: WMS stream',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126',
  'c=IN IP4 0.0.0.0',
  'a=rtcp:9 IN IP4 0.0.0.0',
  'a=ice-ufrag:Ab1c',
  'a=ice-pwd:0123456789abcdefghijklmn',
  'a=ice-options:trickle',
  'a=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99',
  'a=setup:actpass',
  'a=mid:0',
  'a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level',
  'a=sendonly',
  'a=msid:stream audio-track',
  'a=rtcp-mux',
  'a=rtpmap:111 opus/48000/2',
  'a=rtcp-fb:111 transport-cc',
  'a=fmtp:111 minptime=10;useinbandfec=1',
  'a=rtpmap:63 red/48000/2',
  'a=rtpmap:126 telephone-event/8000',
  'a=ssrc:1111 cname:abc',
  'm=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99 45 46',
  'c=IN IP4 0.0.0.0',
  'a=ice-ufrag:Ab1c',
  'a=ice-pwd:0123456789abcdefghijklmn',
  'a=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99',
  'a=setup:actpass',
  'a=mid:1',
  'a=sendonly',
  'a=rtcp-mux',
  'a=rtcp-rsize',
  'a=rtpmap:96 VP8/90000',
  'a=rtcp-fb:96 nack pli',
  'a=rtpmap:97 rtx/90000',
  'a=fmtp:97 apt=96',
  'a=rtpmap:98 VP9/90000',
  'a=rtpmap:45 AV1/90000',
  'a=ssrc-group:FID 2222 3333',
  'a=ssrc:2222 cname:abc',
  'a=ssrc:3333 cname:abc',
  '',
].join('\r\n');

describe('parseOffer', () => {
  it("takes a browser publisher's offer: the mids and the payload types it gave VP8 and Opus", () => {
    expect(parseOffer(CHROMIUM_PUBLISHER, 'publisher')).toEqual({
      audio: { mid: '0', pt: 111 },
      video: { mid: '1', pt: 96 },
    });
  });

  it('tells what the tree does not carry (WHIP 406) from what is malformed (400)', () => {
    const error = (sdp: string, role: 'viewer' | 'publisher' = 'publisher') => {
      try {
        parseOffer(sdp, role);
      } catch (err) {
        expect(err).toBeInstanceOf(OfferError);
        return { message: (err as OfferError).message, unsupported: (err as OfferError).unsupported };
      }
      throw new Error('accepted');
    };
    expect(error(CHROMIUM_PUBLISHER.replace('a=rtpmap:96 VP8/90000', 'a=rtpmap:96 H264/90000'))).toEqual({
      message: 'no VP8 in the video section (the tree carries VP8 and Opus only)',
      unsupported: true,
    });
    expect(error(CHROMIUM_PUBLISHER.replace(/m=audio[\s\S]*?(?=m=video)/, ''))).toEqual({
      message: 'no audio section sending Opus',
      unsupported: true,
    });
    expect(error(CHROMIUM_PUBLISHER.replaceAll('a=sendonly', 'a=recvonly'))).toEqual({
      message: 'the audio section does not send (sendonly or sendrecv expected)',
      unsupported: false,
    });
    // The same browser offer is no viewer's: it does not receive.
    expect(error(CHROMIUM_PUBLISHER, 'viewer').message).toBe(
      'the audio section does not receive (recvonly or sendrecv expected)',
    );
    expect(error(CHROMIUM_PUBLISHER.replace(/a=fingerprint:.*\r\n/g, '')).unsupported).toBe(false);
  });
});
