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

class Pb {
  private chunks: Uint8Array[] = [];
  private size = 0;
  private push(b: Uint8Array): void {
    this.chunks.push(b);
    this.size += b.length;
  }
  varint(v: number): this {
    const out: number[] = [];
    let n = BigInt(v);
    if (n < 0n) n += 1n << 64n;
    do {
      let byte = Number(n & 0x7fn);
      n >>= 7n;
      if (n) byte |= 0x80;
      out.push(byte);
    } while (n);
    this.push(Uint8Array.from(out));
    return this;
  }
  tag(field: number, wire: number): this {
    return this.varint((field << 3) | wire);
  }
  bytes(field: number, b: Uint8Array): this {
    this.tag(field, 2).varint(b.length);
    this.push(b);
    return this;
  }
  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }
  double(field: number, v: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, true);
    this.tag(field, 1);
    this.push(b);
    return this;
  }
  int64(field: number, v: number): this {
    return this.tag(field, 0).varint(v);
  }
  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

/** prometheus.WriteRequest { repeated TimeSeries timeseries = 1 }. */
export function encodeWriteRequest(series: WriteSeries[]): Uint8Array {
  const req = new Pb();
  for (const s of series) {
    const ts = new Pb();
    for (const name of Object.keys(s.labels).sort())
      ts.bytes(1, new Pb().string(1, name).string(2, s.labels[name]!).finish());
    for (const x of s.samples) ts.bytes(2, new Pb().double(1, x.value).int64(2, x.timestampMs).finish());
    req.bytes(1, ts.finish());
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
