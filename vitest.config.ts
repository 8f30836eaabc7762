import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // the demo imports the package by its name (Vite maps it to the sources there too): test/one-path.test.ts runs its session
  resolve: { alias: { 'dcam-webgpu': fileURLToPath(new URL('./src/index.ts', import.meta.url)) } },
  test: {
    include: ['test/**/*.test.ts'],
    // One WebGPU device per file; files run one after another (the software adapter uses every core).
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
});
