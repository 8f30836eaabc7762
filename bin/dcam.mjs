#!/usr/bin/env node
// The `dcam` command: runs the TypeScript sources through tsx (no build step). It exits as soon as the
// command is done: nothing (a progress bar's timer, a GPU handle) can keep a finished or failed run alive.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exit(await main(process.argv));
