import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));
const repo = fileURLToPath(new URL('..', import.meta.url));

/** The demo imports the engine's own source (../src, ../shaders): no copy, no prebuilt package. */
export default defineConfig({
  root,
  base: './',
  server: { fs: { allow: [repo] } },
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', chunkSizeWarningLimit: 2048 },
  esbuild: { target: 'es2022' },
});
