/**
 * Prometheus remote-write requests (protobuf WriteRequest, snappy block
 * format) encoded by hand: the bench needs only to send samples, and two small
 * encoders are less than two dependencies. Snappy output is literals only,
 * which every decoder accepts; the bench does not need compression.
 */

export interface WriteSeries {
  /** Label pairs, __name__ included; sorted here. */
  labels: Record<string, string>;
  samples: Array<{ value: number; timestampMs: number }>;
}

/** A growing buffer with the protobuf wire primitives the WriteRequest needs. */
class Writer {
  buf = Buffer.allocUnsafe(1 << 16);
  pos = 0;
  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  /** Non-negative integers below 2^53: lengths, tags and millisecond timestamps. */
  varint(v: number): this {
    if (!(v >= 0 && Number.isSafeInteger(v))) throw new Error(`varint out of range: ${v}`);
    this.room(10);
    let n = v;
    while (n >= 0x80) {
      this.buf[this.pos++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[this.pos++] = n;
    return this;
  }
  tag(field: number, wire: number): this {
    return this.varint((field << 3) | wire);
  }
  string(field: number, s: string): this {
    const n = Buffer.byteLength(s);
    this.tag(field, 2).varint(n).room(n);
    this.pos += this.buf.write(s, this.pos);
    return this;
  }
  /** A length-delimited field holding what `inner` wrote. */
  message(field: number, inner: Writer): this {
    this.tag(field, 2).varint(inner.pos).room(inner.pos);
    inner.buf.copy(this.buf, this.pos, 0, inner.pos);
    this.pos += inner.pos;
    return this;
  }
  double(field: number, v: number): this {
    this.tag(field, 1).room(8);
    this.pos = this.buf.writeDoubleLE(v, this.pos);
    return this;
  }
  reset(): this {
    this.pos = 0;
    return this;
  }
  finish(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
}

/** prometheus.WriteRequest { repeated TimeSeries timeseries = 1 }. */
export function encodeWriteRequest(series: WriteSeries[]): Uint8Array {
  const req = new Writer();
  const ts = new Writer();
  const part = new Writer();
  for (const s of series) {
    ts.reset();
    for (const name of Object.keys(s.labels).sort())
      ts.message(1, part.reset().string(1, name).string(2, s.labels[name]!));
    for (const x of s.samples) ts.message(2, part.reset().double(1, x.value).tag(2, 0).varint(x.timestampMs));
    req.message(1, ts);
  }
  return req.finish();
}

/** Snappy block format, literals only (at most 64 KiB each). */
export function snappyLiterals(data: Uint8Array): Uint8Array {
  const parts: number[] = [];
  let n = data.length;
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n) b |= 0x80;
    parts.push(b);
  } while (n);
  const out: Uint8Array[] = [Uint8Array.from(parts)];
  for (let o = 0; o < data.length; o += 65_536) {
    const lit = data.subarray(o, Math.min(o + 65_536, data.length));
    const m = lit.length - 1;
    out.push(
      m < 60 ? Uint8Array.of(m << 2) : m < 256 ? Uint8Array.of(60 << 2, m) : Uint8Array.of(61 << 2, m & 0xff, m >> 8),
    );
    out.push(lit);
  }
  const total = out.reduce((a, b) => a + b.length, 0);
  const buf = new Uint8Array(total);
  let off = 0;
  for (const b of out) {
    buf.set(b, off);
    off += b.length;
  }
  return buf;
}

/** POSTs series to Prometheus' remote-write receiver (--web.enable-remote-write-receiver). */
export async function remoteWrite(prometheusUrl: string, series: WriteSeries[]): Promise<void> {
  const res = await fetch(`${prometheusUrl}/api/v1/write`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-protobuf',
      'content-encoding': 'snappy',
      'x-prometheus-remote-write-version': '0.1.0',
    },
    body: Buffer.from(snappyLiterals(encodeWriteRequest(series))),
    signal: AbortSignal.timeout(30_000),
  });
  if (res.status !== 204 && res.status !== 200) throw new Error(`remote write: ${res.status} ${await res.text()}`);
}
