/**
 * An egress node's UDP port pool: a contiguous range. A mountpoint takes two
 * ports (audio, video), a viewer one. Lowest free port first, so a restart
 * that re-takes recorded ports finds them where they were.
 */
export class PortPool {
  private readonly used = new Set<number>();

  constructor(
    readonly min: number,
    readonly max: number,
    /** Called after every take or release that changed the pool (the egress reports its load then). */
    private readonly onChange: () => void = () => {},
  ) {
    if (!Number.isInteger(min) || !Number.isInteger(max) || min < 1 || max > 65535 || min > max) {
      throw new RangeError(`bad port range ${min}-${max}`);
    }
  }

  get size(): number {
    return this.max - this.min + 1;
  }
  get allocated(): number {
    return this.used.size;
  }
  get available(): number {
    return this.size - this.used.size;
  }

  /** `n` free ports, or null (nothing taken) when fewer are left. */
  take(n = 1): number[] | null {
    if (this.available < n) return null;
    const out: number[] = [];
    for (let p = this.min; p <= this.max && out.length < n; p++) if (!this.used.has(p)) out.push(p);
    for (const p of out) this.used.add(p);
    this.onChange();
    return out;
  }

  /** Takes this port if it is in range and free. */
  takeExact(p: number): boolean {
    if (p < this.min || p > this.max || this.used.has(p)) return false;
    this.used.add(p);
    this.onChange();
    return true;
  }

  release(...ports: number[]): void {
    let changed = false;
    for (const p of ports) changed = this.used.delete(p) || changed;
    if (changed) this.onChange();
  }
}
