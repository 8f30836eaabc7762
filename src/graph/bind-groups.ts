/**
 * Bind groups cached by layout and buffers. A training step or an inference batch binds the same pooled
 * buffers in the same order every time, so after the first step nearly every dispatch finds its bind
 * group here instead of creating one (the largest host cost per dispatch before). Kernel parameters are
 * not part of the key: they sit in the command stream's uniform arena, bound with a dynamic offset.
 */
export interface UniformBinding {
  buffer: GPUBuffer;
  size: number;
}

export class BindGroupCache {
  private readonly groups = new Map<string, GPUBindGroup>();
  /** Keys of the groups that hold each buffer, to drop them when the buffer is destroyed. */
  private readonly keysByBuffer = new Map<number, string[]>();
  private readonly ids = new WeakMap<GPUBuffer, number>();
  private nextId = 1;
  hits = 0;
  misses = 0;

  constructor(
    private readonly device: GPUDevice,
    /** Past this many groups the cache starts over (buffers that come and go, e.g. growing shapes). */
    private readonly maxGroups = 8192,
  ) {}

  get size(): number {
    return this.groups.size;
  }

  get(layout: GPUBindGroupLayout, signature: string, uniform: UniformBinding | null, buffers: readonly GPUBuffer[]): GPUBindGroup {
    let key = signature;
    for (const b of buffers) key += `:${this.idOf(b)}`;
    const hit = this.groups.get(key);
    if (hit) {
      this.hits++;
      return hit;
    }
    this.misses++;
    if (this.groups.size >= this.maxGroups) this.clear();
    const entries: GPUBindGroupEntry[] = [];
    if (uniform) entries.push({ binding: 0, resource: { buffer: uniform.buffer, offset: 0, size: uniform.size } });
    buffers.forEach((buffer, i) => entries.push({ binding: i + 1, resource: { buffer } }));
    const group = this.device.createBindGroup({ layout, entries });
    this.groups.set(key, group);
    for (const b of buffers) {
      const id = this.idOf(b);
      const keys = this.keysByBuffer.get(id);
      if (keys) keys.push(key);
      else this.keysByBuffer.set(id, [key]);
    }
    return group;
  }

  /** Drops every group that binds `buffer` (called before the buffer is destroyed). */
  forget(buffer: GPUBuffer): void {
    const id = this.ids.get(buffer);
    if (id === undefined) return;
    for (const key of this.keysByBuffer.get(id) ?? []) this.groups.delete(key);
    this.keysByBuffer.delete(id);
  }

  clear(): void {
    this.groups.clear();
    this.keysByBuffer.clear();
  }

  private idOf(buffer: GPUBuffer): number {
    let id = this.ids.get(buffer);
    if (id === undefined) this.ids.set(buffer, (id = this.nextId++));
    return id;
  }
}
