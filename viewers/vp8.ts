/**
 * True when this VP8 RTP packet starts a key frame (RFC 7741 4.2, 4.3: the
 * payload descriptor's S bit set and partition index 0, then the VP8 payload
 * header's P bit clear). Header extensions and CSRCs are skipped.
 */
export function vp8KeyframeStart(p: Buffer): boolean {
  if (p.length < 13) return false;
  let off = 12 + (p[0]! & 0x0f) * 4;
  if (p[0]! & 0x10) {
    if (off + 4 > p.length) return false;
    off += 4 + p.readUInt16BE(off + 2) * 4;
  }
  if (off >= p.length) return false;
  const d = p[off++]!;
  if (d & 0x80) {
    const x = p[off++] ?? 0;
    if (x & 0x80) off += (p[off] ?? 0) & 0x80 ? 2 : 1; // PictureID, 7 or 15 bits
    if (x & 0x40) off++; // TL0PICIDX
    if (x & 0x30) off++; // TID / KEYIDX
  }
  if (off >= p.length) return false;
  return (d & 0x10) !== 0 && (d & 0x07) === 0 && (p[off]! & 0x01) === 0;
}
