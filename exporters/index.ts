export * from './labels.ts';
export * from './families.ts';
export * from './registry.ts';
export * from './exposition.ts';
export * from './http.ts';
export * from './injection.ts';
export * from './relay.ts';
export * from './egress.ts';
