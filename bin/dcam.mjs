#!/usr/bin/env node
// The `dcam` command. In an installed package it runs the compiled code (dist/); in a checkout of the
// repository, the TypeScript sources through tsx (a dev dependency), so that edits need no build step.
// It exits as soon as the command is done: nothing (a progress bar's timer, a GPU handle) can keep a
// finished or failed run alive.
import { existsSync } from 'node:fs';

const root = new URL('..', import.meta.url);
const source = new URL('src/cli/main.ts', root);
const compiled = new URL('dist/cli/main.js', root);

async function loadMain() {
  if (existsSync(source)) {
    try {
      const { register } = await import('tsx/esm/api');
      register();
      return (await import(source.href)).main;
    } catch (e) {
      if (!existsSync(compiled)) throw new Error(`dcam: cannot run the sources without tsx (npm ci) and there is no build (npm run build): ${e.message}`);
    }
  }
  return (await import(compiled.href)).main;
}

const main = await loadMain();
process.exit(await main(process.argv));
