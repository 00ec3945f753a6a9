import type { StreamType } from '../exporters/index.ts';

/**
 * A WHEP or WHIP offer, read just far enough to decide whether we can answer
 * it: one audio and one video section the offerer receives on (a WHEP viewer)
 * or sends on (a WHIP publisher), VP8 and Opus among their codecs, ICE
 * credentials and a DTLS fingerprint. The library parses the whole offer
 * again; this only turns what it would choke on, or answer uselessly, into a
 * clear 400 (malformed) or, for what is well formed but not carried by the
 * tree (another codec, a section too few), an `unsupported` error.
 */

/** The largest offer taken (a browser's is 4-8 KiB). */
export const MAX_OFFER_BYTES = 16 * 1024;

export interface OfferedStream {
  /** The section's `a=mid`. */
  mid: string;
  /** The payload type the viewer gave VP8 (video) or Opus (audio). */
  pt: number;
}

export interface ParsedOffer {
  audio: OfferedStream;
  video: OfferedStream;
}

export class OfferError extends Error {
  constructor(
    message: string,
    /** Well formed, but media the tree does not carry (WHIP answers 406). */
    readonly unsupported = false,
  ) {
    super(message);
  }
}

/** Who offers: a viewer receives the session's media, a publisher sends it. */
export type OfferRole = 'viewer' | 'publisher';

interface Section {
  kind: string;
  port: number;
  attrs: string[];
}

const CODEC: Record<StreamType, RegExp> = { video: /^VP8\/90000$/i, audio: /^opus\/48000(\/2)?$/i };

/** Parses and checks an offer; throws OfferError saying what is missing. */
export function parseOffer(sdp: string, role: OfferRole = 'viewer'): ParsedOffer {
  const who = role === 'viewer' ? 'a WHEP viewer' : 'a WHIP publisher';
  const verb = role === 'viewer' ? 'receiving' : 'sending';
  if (Buffer.byteLength(sdp) > MAX_OFFER_BYTES) throw new OfferError(`offer over ${MAX_OFFER_BYTES} bytes`);
  const lines = sdp.split(/\r?\n/).filter((l) => l !== '');
  if (lines[0] !== 'v=0') throw new OfferError('not an SDP offer (it must start with v=0)');
  const session: string[] = [];
  const sections: Section[] = [];
  for (const line of lines) {
    if (!/^[a-z]=/.test(line)) throw new OfferError(`not an SDP line: ${JSON.stringify(line.slice(0, 40))}`);
    if (line.startsWith('m=')) {
      const [kind = '', port = ''] = line.slice(2).split(' ');
      sections.push({ kind, port: Number(port), attrs: [] });
    } else if (line.startsWith('a=')) (sections.at(-1)?.attrs ?? session).push(line.slice(2));
  }
  const attr = (list: string[], name: string) =>
    list.find((a) => a.startsWith(`${name}:`))?.slice(name.length + 1) ?? null;
  const flag = (list: string[], name: string) => list.includes(name);
  if (!attr(session, 'fingerprint') && !sections.every((s) => attr(s.attrs, 'fingerprint')))
    throw new OfferError('no DTLS fingerprint (a=fingerprint)');

  const out: Partial<ParsedOffer> = {};
  for (const s of sections) {
    if (s.kind !== 'audio' && s.kind !== 'video')
      throw new OfferError(`unsupported m=${s.kind} section: ${who} offers one audio and one video section`, true);
    if (out[s.kind]) throw new OfferError(`more than one ${s.kind} section`);
    // Port 0 is a section the offerer itself disabled.
    if (s.port === 0) continue;
    const ufrag = attr(s.attrs, 'ice-ufrag') ?? attr(session, 'ice-ufrag');
    const pwd = attr(s.attrs, 'ice-pwd') ?? attr(session, 'ice-pwd');
    if (!ufrag || !pwd) throw new OfferError(`no ICE credentials (a=ice-ufrag, a=ice-pwd) for the ${s.kind} section`);
    const mid = attr(s.attrs, 'mid');
    if (!mid || !/^[A-Za-z0-9_.-]{1,32}$/.test(mid)) throw new OfferError(`no usable a=mid in the ${s.kind} section`);
    if (role === 'viewer' && (flag(s.attrs, 'sendonly') || flag(s.attrs, 'inactive')))
      throw new OfferError(`the ${s.kind} section does not receive (recvonly or sendrecv expected)`);
    if (role === 'publisher' && (flag(s.attrs, 'recvonly') || flag(s.attrs, 'inactive')))
      throw new OfferError(`the ${s.kind} section does not send (sendonly or sendrecv expected)`);
    let pt: number | null = null;
    for (const a of s.attrs) {
      const m = /^rtpmap:(\d{1,3}) (\S+)$/.exec(a);
      if (m && CODEC[s.kind].test(m[2]!) && Number(m[1]) >= 96 && Number(m[1]) <= 127) {
        pt = Number(m[1]);
        break;
      }
    }
    if (pt === null)
      throw new OfferError(
        `no ${s.kind === 'video' ? 'VP8' : 'Opus'} in the ${s.kind} section (the tree carries VP8 and Opus only)`,
        true,
      );
    out[s.kind] = { mid, pt };
  }
  if (!out.video) throw new OfferError(`no video section ${verb} VP8`, true);
  if (!out.audio) throw new OfferError(`no audio section ${verb} Opus`, true);
  return out as ParsedOffer;
}

/**
 * The answer's host candidates with `advertise` in place of the address the
 * peer bound (`bound`): a node behind a 1:1 NAT binds its private address and
 * tells viewers its public one.
 */
export function advertiseCandidates(sdp: string, bound: string, advertise: string): string {
  if (bound === advertise) return sdp;
  return sdp
    .split('\r\n')
    .map((l) => {
      const m = /^(a=candidate:\S+ \d+ \S+ \d+ )(\S+)( .*)$/.exec(l);
      if (m && m[2] === bound) return `${m[1]}${advertise}${m[3]}`;
      if (l === `c=IN IP4 ${bound}` && !advertise.includes(':')) return `c=IN IP4 ${advertise}`;
      return l;
    })
    .join('\r\n');
}
