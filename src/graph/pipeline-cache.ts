/**
 * Compiled compute pipelines, keyed on what changes the generated code (see `compileKernel`), with
 * explicit bind group layouts built from the spec (not `layout: 'auto'`, which makes a layout of only
 * the bindings the code touches, so every variant had to list exactly those). Kernels with the same
 * signature (uniform size, buffer accesses) share one layout, and so can share bind groups.
 *
 * `get` compiles synchronously on a miss, so op recording stays synchronous; `prepare` compiles ahead of
 * time with `createComputePipelineAsync`, de-duplicating compiles already in flight. WGSL errors are
 * reported with the shader file, line, column and the offending source line.
 */
import { compileKernel, generateShader, type CompiledKernel, type GeneratedShader, type KernelSpec } from './kernel.js';

export class ShaderCompileError extends Error {}

export class PipelineCache {
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly inFlight = new Map<string, Promise<GPUComputePipeline>>();
  private readonly layouts = new Map<string, { group: GPUBindGroupLayout; pipeline: GPUPipelineLayout }>();
  /** Validation checks of synchronous compiles, awaited (and thrown) at the next sync point. */
  private pendingChecks: Promise<void>[] = [];

  constructor(private readonly device: GPUDevice) {}

  get size(): number {
    return this.pipelines.size;
  }

  /** The bind group layout of a kernel (one per signature). */
  layoutOf(kernel: CompiledKernel): GPUBindGroupLayout {
    return this.layoutsOf(kernel).group;
  }

  private layoutsOf(kernel: CompiledKernel): { group: GPUBindGroupLayout; pipeline: GPUPipelineLayout } {
    const hit = this.layouts.get(kernel.layoutSignature);
    if (hit) return hit;
    const entries: GPUBindGroupLayoutEntry[] = [];
    if (kernel.paramBytes > 0) {
      entries.push({
        binding: 0,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: 'uniform', hasDynamicOffset: true, minBindingSize: kernel.paramBytes },
      });
    }
    kernel.bindings.forEach((b, i) => {
      entries.push({ binding: i + 1, visibility: GPUShaderStage.COMPUTE, buffer: { type: b.access === 'read' ? 'read-only-storage' : 'storage' } });
    });
    const group = this.device.createBindGroupLayout({ entries, label: kernel.layoutSignature });
    const layouts = { group, pipeline: this.device.createPipelineLayout({ bindGroupLayouts: [group] }) };
    this.layouts.set(kernel.layoutSignature, layouts);
    return layouts;
  }

  get(spec: KernelSpec): GPUComputePipeline {
    const kernel = compileKernel(spec);
    const hit = this.pipelines.get(kernel.key);
    if (hit) return hit;
    const key = kernel.key;
    const shader = generateShader(spec);
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ code: shader.code, label: spec.shader });
    const pipeline = this.device.createComputePipeline({
      layout: this.layoutsOf(kernel).pipeline,
      compute: { module, entryPoint: 'main' },
      label: spec.shader,
    });
    const check = this.device.popErrorScope().then(async (err) => {
      if (err) throw await compileError(spec, shader, module, err.message);
    });
    this.pendingChecks.push(check);
    check.catch(() => {}); // surfaced by checkErrors()
    this.pipelines.set(key, pipeline);
    return pipeline;
  }

  /** Compiles asynchronously (e.g. at warm-up) so that later `get` calls hit the cache. */
  prepare(spec: KernelSpec): Promise<GPUComputePipeline> {
    const kernel = compileKernel(spec);
    const key = kernel.key;
    const hit = this.pipelines.get(key);
    if (hit) return Promise.resolve(hit);
    const running = this.inFlight.get(key);
    if (running) return running;
    const shader = generateShader(spec);
    // A WGSL error rejects the pipeline's promise below; in a scope it does not also become the
    // device's uncaptured error, which the runtime would throw again at its next read.
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ code: shader.code, label: spec.shader });
    void this.device.popErrorScope().catch(() => {});
    const promise = this.device
      .createComputePipelineAsync({ layout: this.layoutsOf(kernel).pipeline, compute: { module, entryPoint: 'main' }, label: spec.shader })
      .then(
        (p) => {
          this.pipelines.set(key, p);
          return p;
        },
        async (e: unknown) => {
          throw await compileError(spec, shader, module, e instanceof Error ? e.message : String(e));
        },
      )
      .finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, promise);
    return promise;
  }

  async checkErrors(): Promise<void> {
    const checks = this.pendingChecks;
    this.pendingChecks = [];
    await Promise.all(checks);
  }
}

async function compileError(
  spec: KernelSpec,
  shader: GeneratedShader,
  module: GPUShaderModule,
  fallback: string,
): Promise<ShaderCompileError> {
  const info = await module.getCompilationInfo();
  const lines = shader.code.split('\n');
  const errors = info.messages.filter((m) => m.type === 'error');
  if (errors.length === 0) return new ShaderCompileError(`kernel ${spec.shader}: pipeline creation failed: ${fallback}`);
  const text = errors
    .map((m) => {
      const fileLine = m.lineNum - shader.headerLines;
      const where = fileLine > 0 ? `shaders/${spec.shader}.wgsl:${fileLine}:${m.linePos}` : `generated header line ${m.lineNum}:${m.linePos}`;
      const src = lines[m.lineNum - 1] ?? '';
      return `${where}: ${m.message}\n    ${src.trim()}`;
    })
    .join('\n');
  return new ShaderCompileError(`WGSL error in kernel ${spec.shader} (defines ${JSON.stringify(spec.defines ?? {})}):\n${text}`);
}
