export * from './ids.ts';
export * from './keys.ts';
export * from './events.ts';
export * from './store.ts';
export * from './egress-load.ts';
export * from './subscriber.ts';
export * from './actuator-keys.ts';
export * from './actuator-subtrees.ts';
