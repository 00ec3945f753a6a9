import { setTimeout as sleep } from 'node:timers/promises';
import { duration } from '../../process/duration.ts';
import { defineStep } from './step.ts';

/** `- sleep: 30s`: waits, doing nothing. */
export const sleepStep = defineStep(duration, async (_ctx, ms) => {
  await sleep(ms);
});
