/**
 * Where WGSL comes from: the kernels of shaders/*.wgsl travel inside the package as strings
 * (shaders.generated.ts, made by scripts/bundle-shaders.mjs), so Node and browser bundles need no file
 * access and no registration. `registerShaderSources` can still replace them (e.g. a live-edited shader).
 */
import { SHADERS } from './shaders.generated.js';

const sources = new Map<string, string>(Object.entries(SHADERS));

export function registerShaderSources(files: Record<string, string>): void {
  for (const [path, text] of Object.entries(files)) {
    const name = path.replace(/^.*\//, '').replace(/\.wgsl$/, '');
    sources.set(name, text);
  }
}

export function shaderSource(name: string): string {
  const text = sources.get(name);
  if (text === undefined) throw new Error(`no shader named ${name}.wgsl (known: ${[...sources.keys()].join(', ')})`);
  return text;
}
