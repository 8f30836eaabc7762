/**
 * A compute kernel described as data: which WGSL file, which compile-time constants, which uniform
 * parameters and which storage buffers, in which order. The WGSL header (parameter struct, bindings,
 * workgroup size) is generated from this description, so the shader files hold only the algorithm and
 * the TypeScript side can never disagree with the shader about binding order.
 */
import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import { shaderSource } from './shader-source.js';

export type ScalarType = 'u32' | 'i32' | 'f32';
export type ElementType = 'f32' | 'u32' | 'vec4f';

export interface BindingSpec {
  name: string;
  access: 'read' | 'read_write';
  /** Element type of the array, f32 unless given. */
  type?: ElementType;
  /** A boolean define: the buffer exists in variants where it is true (`bias` with HAS_BIAS). */
  when?: string;
}

/** A uniform parameter: name, type, and optionally the boolean define it exists under. */
export type ParamSpec = readonly [name: string, type: ScalarType, when?: string];

export interface KernelSpec {
  /** File name in shaders/, without `.wgsl`. */
  shader: string;
  /** Compile-time values: substituted for `${NAME}` in the shader; booleans drive `#if ${NAME}`. */
  defines?: Record<string, number | boolean>;
  /** Uniform parameters (all 32-bit scalars), in struct order; available in WGSL as `P.<name>`. */
  params: ReadonlyArray<ParamSpec>;
  /** Storage buffers, available in WGSL by name; those whose `when` define is false are left out. */
  bindings: readonly BindingSpec[];
  /** Workgroup size, available in WGSL as WG_X, WG_Y, WG_Z. */
  workgroupSize: readonly [number, number?, number?];
}

export const read = (name: string, type: ElementType = 'f32', when?: string): BindingSpec => ({ name, access: 'read', type, when });
export const write = (name: string, type: ElementType = 'f32', when?: string): BindingSpec => ({ name, access: 'read_write', type, when });

/** Parameter values by name (`{ N: 2, eps: 1e-5 }`). */
export type ParamValues = Readonly<Record<string, number>>;

/**
 * What is derived from a spec once and reused at every dispatch: the variant's parameters and buffers
 * (the `when` filter applied), the uniform's size, the cache key, and the bind group layout's shape.
 */
export interface CompiledKernel {
  readonly spec: KernelSpec;
  /** Everything that changes the generated code, nothing else: the pipeline cache key. */
  readonly key: string;
  readonly params: ReadonlyArray<readonly [string, ScalarType]>;
  readonly bindings: readonly BindingSpec[];
  /** Names declared by the spec but absent in this variant (their define is false). */
  readonly inactive: ReadonlySet<string>;
  readonly paramBytes: number;
  /** Uniform size and buffer accesses, e.g. `48:r,r,w`: kernels with the same signature share a layout. */
  readonly layoutSignature: string;
}

const compiledKernels = new WeakMap<KernelSpec, CompiledKernel>();

function active(spec: KernelSpec, when: string | undefined, what: string): boolean {
  if (when === undefined) return true;
  const v = spec.defines?.[when];
  if (typeof v !== 'boolean') throw new Error(`kernel ${spec.shader}: ${what} depends on define ${when}, which is not a boolean define of the spec`);
  return v;
}

/** The spec's derived form, computed on first use and remembered for the spec object. */
export function compileKernel(spec: KernelSpec): CompiledKernel {
  const hit = compiledKernels.get(spec);
  if (hit) return hit;
  const params = spec.params.filter(([name, , when]) => active(spec, when, `parameter ${name}`)).map(([n, t]) => [n, t] as const);
  const bindings = spec.bindings.filter((b) => active(spec, b.when, `buffer ${b.name}`));
  const names = [...spec.params.map((p) => p[0]), ...spec.bindings.map((b) => b.name)];
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new Error(`kernel ${spec.shader}: the name ${dup} is declared twice`);
  const inactive = new Set([...spec.params.filter((p) => !params.some((q) => q[0] === p[0])).map((p) => p[0]), ...spec.bindings.filter((b) => !bindings.includes(b)).map((b) => b.name)]);
  const paramBytes = params.length === 0 ? 0 : Math.max(16, Math.ceil((params.length * 4) / 16) * 16);
  const compiled: CompiledKernel = {
    spec,
    key: JSON.stringify([spec.shader, spec.defines ?? {}, params, bindings.map((b) => [b.name, b.access, b.type ?? 'f32']), spec.workgroupSize]),
    params,
    bindings,
    inactive,
    paramBytes,
    layoutSignature: `${paramBytes}:${bindings.map((b) => (b.access === 'read' ? 'r' : 'w')).join(',')}`,
  };
  compiledKernels.set(spec, compiled);
  return compiled;
}

/**
 * Memoises a spec factory on its arguments (booleans, numbers, short arrays of them), so that each
 * variant is one object and its derived form is computed once, not at every dispatch.
 */
export function kernelVariants<A extends ReadonlyArray<boolean | number | string | readonly number[]>>(make: (...args: A) => KernelSpec): (...args: A) => KernelSpec {
  const made = new Map<string, KernelSpec>();
  return (...args: A) => {
    const key = args.join('|');
    let spec = made.get(key);
    if (!spec) made.set(key, (spec = make(...args)));
    return spec;
  };
}

/** Writes the named parameter values into `view` at `offset`; a missing, unknown or mistyped one is an error naming it. */
export function packParams(kernel: CompiledKernel, op: string, values: ParamValues, view: DataView, offset: number): void {
  const where = `${op}: kernel ${kernel.spec.shader}`;
  let given = 0;
  kernel.params.forEach(([name, type], i) => {
    const v = values[name];
    if (v === undefined) throw new Error(`${where}: missing parameter '${name}' (takes ${kernel.params.map((p) => p[0]).join(', ')})`);
    given++;
    const at = offset + 4 * i;
    if (typeof v !== 'number') throw new Error(`${where}: parameter '${name}' must be a number, got ${typeof v}`);
    if (type === 'f32') view.setFloat32(at, v, true);
    else {
      if (!Number.isInteger(v) || (type === 'u32' && (v < 0 || v > 0xffffffff)) || (type === 'i32' && Math.abs(v) > 0x7fffffff)) {
        throw new Error(`${where}: parameter '${name}' must be a ${type}, got ${v}`);
      }
      if (type === 'u32') view.setUint32(at, v, true);
      else view.setInt32(at, v, true);
    }
  });
  if (given !== Object.keys(values).length) {
    const extra = Object.keys(values).filter((k) => !kernel.params.some((p) => p[0] === k));
    const why = (k: string) => (kernel.inactive.has(k) ? `'${k}' (not in this variant)` : `'${k}'`);
    throw new Error(`${where}: unknown parameter${extra.length > 1 ? 's' : ''} ${extra.map(why).join(', ')} (takes ${kernel.params.map((p) => p[0]).join(', ') || 'none'})`);
  }
}

export interface GeneratedShader {
  code: string;
  /** Lines before the shader file's first line, to map compiler messages back to the file. */
  headerLines: number;
}

export function generateShader(spec: KernelSpec): GeneratedShader {
  const kernel = compileKernel(spec);
  const [x, y = 1, z = 1] = spec.workgroupSize;
  const header: string[] = [];
  if (kernel.params.length > 0) {
    header.push(`struct Params { ${kernel.params.map(([n, t]) => `${n}: ${t}`).join(', ')} }`);
    header.push('@group(0) @binding(0) var<uniform> P: Params;');
  }
  kernel.bindings.forEach((b, i) => {
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

/** Replaces `//!include NAME` lines with shaders/NAME.wgsl (shared helpers such as reductions), which may include others. */
function withIncludes(source: string, depth = 0, included = new Set<string>()): string {
  if (depth > 4) throw new Error('shader includes nest more than 4 deep (a cycle?)');
  // each library once, however many files include it (lib_reduce and a shader may both need lib_float)
  return source.replace(/^\/\/!include ([A-Za-z0-9_]+)\s*$/gm, (_, name: string) => {
    if (included.has(name)) return '';
    included.add(name);
    return withIncludes(shaderSource(name), depth + 1, included);
  });
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
