import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));
const repo = fileURLToPath(new URL('..', import.meta.url));

/** The demo imports the package's public API from the repository's own source: no copy, no build. */
export default defineConfig({
  root,
  base: './',
  resolve: { alias: { 'dcam-webgpu': `${repo}src/index.ts` } },
  server: { fs: { allow: [repo] } },
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', chunkSizeWarningLimit: 2048 },
  esbuild: { target: 'es2022' },
});
