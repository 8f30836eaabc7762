/**
 * A compute kernel described as data: which WGSL file, which compile-time constants, which uniform
 * parameters and which storage buffers, in which order. The WGSL header (parameter struct, bindings,
 * workgroup size) is generated from this description, so the shader files hold only the algorithm and
 * the TypeScript side can never disagree with the shader about binding order.
 */
import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import { shaderSource } from './shader-source.js';

export type ScalarType = 'u32' | 'i32' | 'f32';

export interface BindingSpec {
  name: string;
  access: 'read' | 'read_write';
  /** Element type of the array, f32 unless given. */
  type?: 'f32' | 'u32' | 'vec4f';
}

export interface KernelSpec {
  /** File name in shaders/, without `.wgsl`. */
  shader: string;
  /** Compile-time values: substituted for `${NAME}` in the shader; booleans drive `#if ${NAME}`. */
  defines?: Record<string, number | boolean>;
  /** Uniform parameters (all 32-bit scalars), in struct order; available in WGSL as `P.<name>`. */
  params: ReadonlyArray<readonly [string, ScalarType]>;
  /** Storage buffers at bindings 1.., in order. */
  bindings: readonly BindingSpec[];
  /** Workgroup size, available in WGSL as WG_X, WG_Y, WG_Z. */
  workgroupSize: readonly [number, number?, number?];
}

export const read = (name: string, type: 'f32' | 'u32' | 'vec4f' = 'f32'): BindingSpec => ({ name, access: 'read', type });
export const write = (name: string, type: 'f32' | 'u32' | 'vec4f' = 'f32'): BindingSpec => ({ name, access: 'read_write', type });

/** Cache key: everything that changes the generated code, nothing else. */
export function kernelKey(spec: KernelSpec): string {
  return JSON.stringify([spec.shader, spec.defines ?? {}, spec.params, spec.bindings, spec.workgroupSize]);
}

export function paramsByteSize(spec: KernelSpec): number {
  return Math.max(16, Math.ceil((spec.params.length * 4) / 16) * 16);
}

/** Writes parameter values (in spec order) into `view` at `offset`. */
export function packParams(spec: KernelSpec, values: readonly number[], view: DataView, offset: number): void {
  if (values.length !== spec.params.length) {
    throw new Error(`kernel ${spec.shader}: expected ${spec.params.length} parameters (${spec.params.map((p) => p[0]).join(', ')}), got ${values.length}`);
  }
  spec.params.forEach(([name, type], i) => {
    const v = values[i];
    const at = offset + 4 * i;
    if (type === 'f32') view.setFloat32(at, v, true);
    else {
      if (!Number.isInteger(v) || (type === 'u32' && v < 0)) {
        throw new Error(`kernel ${spec.shader}: parameter ${name} must be a ${type}, got ${v}`);
      }
      if (type === 'u32') view.setUint32(at, v, true);
      else view.setInt32(at, v, true);
    }
  });
}

export interface GeneratedShader {
  code: string;
  /** Lines before the shader file's first line, to map compiler messages back to the file. */
  headerLines: number;
}

export function generateShader(spec: KernelSpec): GeneratedShader {
  const [x, y = 1, z = 1] = spec.workgroupSize;
  const header: string[] = [];
  if (spec.params.length > 0) {
    header.push(`struct Params { ${spec.params.map(([n, t]) => `${n}: ${t}`).join(', ')} }`);
    header.push('@group(0) @binding(0) var<uniform> P: Params;');
  }
  spec.bindings.forEach((b, i) => {
    header.push(
      `@group(0) @binding(${i + 1}) var<storage, ${b.access}> ${b.name}: array<${b.type ?? 'f32'}>;`,
    );
  });
  header.push(`const WG_X: u32 = ${x}u;`, `const WG_Y: u32 = ${y}u;`, `const WG_Z: u32 = ${z}u;`);
  header.push(`const WG_SIZE: u32 = ${x * y * z}u;`);
  const defines: Record<string, number | boolean> = { ...(spec.defines ?? {}) };
  const body = preprocess(withIncludes(shaderSource(spec.shader)), defines, spec.shader);
  return { code: header.join('\n') + '\n' + body, headerLines: header.length };
}

/** Replaces `//!include NAME` lines with shaders/NAME.wgsl (shared helpers such as reductions). */
function withIncludes(source: string): string {
  return source.replace(/^\/\/!include ([A-Za-z0-9_]+)\s*$/gm, (_, name: string) => shaderSource(name));
}

/**
 * Runs the `wgsl-preprocessor` template tag over a shader file: `${NAME}` placeholders become the
 * define values, so `#if ${FLAG}` / `#else` / `#endif` and numeric constants work in plain .wgsl files.
 */
function preprocess(source: string, defines: Record<string, number | boolean>, file: string): string {
  const strings: string[] = [];
  const values: unknown[] = [];
  const re = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;
  let last = 0;
  for (let m = re.exec(source); m; m = re.exec(source)) {
    strings.push(source.slice(last, m.index));
    const name = m[1];
    if (!(name in defines)) throw new Error(`shader ${file}.wgsl uses \${${name}} but the kernel defines no value for it`);
    const v = defines[name];
    // Numbers are emitted as WGSL literals; booleans stay booleans for #if.
    values.push(typeof v === 'number' ? `${v}` : v);
    last = m.index + m[0].length;
  }
  strings.push(source.slice(last));
  const raw = Object.assign([...strings], { raw: strings }) as unknown as TemplateStringsArray;
  return wgsl(raw, ...values);
}
