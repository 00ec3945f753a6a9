import { describe, expect, it } from 'vitest';
import { PortPool } from './port-pool.ts';

describe('PortPool', () => {
  it('hands out the lowest free ports, all or nothing, and takes recorded ports back exactly', () => {
    const p = new PortPool(100, 104);
    expect(p.take(2)).toEqual([100, 101]);
    expect(p.takeExact(103)).toBe(true);
    expect(p.takeExact(103)).toBe(false);
    expect(p.takeExact(99)).toBe(false);
    expect(p.take(3)).toBeNull();
    expect(p.allocated).toBe(3);
    expect(p.take(2)).toEqual([102, 104]);
    expect(p.available).toBe(0);
    p.release(101, 104);
    expect([p.allocated, p.available, p.size]).toEqual([3, 2, 5]);
  });

  it('refuses a bad range', () => {
    expect(() => new PortPool(10, 9)).toThrow(/bad port range/);
    expect(() => new PortPool(0, 9)).toThrow(/bad port range/);
    expect(() => new PortPool(1, 65536)).toThrow(/bad port range/);
  });
});
