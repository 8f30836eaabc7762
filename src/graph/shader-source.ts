/**
 * Where WGSL files come from. In Node they are read from the package's shaders/ folder; a bundler
 * (the browser demo) registers them up front, e.g. with Vite:
 *   registerShaderSources(import.meta.glob('../shaders/*.wgsl', { query: '?raw', import: 'default', eager: true }))
 */
const sources = new Map<string, string>();

export function registerShaderSources(files: Record<string, string>): void {
  for (const [path, text] of Object.entries(files)) {
    const name = path.replace(/^.*\//, '').replace(/\.wgsl$/, '');
    sources.set(name, text);
  }
}

interface NodeFs {
  readFileSync(path: URL, enc: 'utf8'): string;
}

export function shaderSource(name: string): string {
  const known = sources.get(name);
  if (known !== undefined) return known;
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const fs = proc?.getBuiltinModule?.('node:fs') as NodeFs | undefined;
  if (!fs) {
    throw new Error(`shader ${name}.wgsl is not registered: call registerShaderSources() with the shaders/ folder first`);
  }
  const text = fs.readFileSync(new URL(`../../shaders/${name}.wgsl`, import.meta.url), 'utf8');
  sources.set(name, text);
  return text;
}
