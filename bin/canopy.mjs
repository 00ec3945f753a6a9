#!/usr/bin/env node
// Runs the TypeScript sources directly, so there is no build output to go stale.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli/main.ts');
await main(process.argv);
