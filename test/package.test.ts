/** The package carries what it needs: the shaders bundled as strings (never stale), the teacher file. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs build script without types
import { bundledShaders } from '../scripts/bundle-shaders.mjs';

describe('package contents', () => {
  it('src/graph/shaders.generated.ts is up to date with shaders/*.wgsl (npm run shaders)', () => {
    const current = readFileSync(new URL('../src/graph/shaders.generated.ts', import.meta.url), 'utf8');
    expect(current === (bundledShaders() as string), 'shaders.generated.ts is stale: run npm run shaders').toBe(true);
  });
});
