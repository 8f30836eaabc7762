/**
 * What the host asks of WebGPU, counted at the API (the webgpu package's prototypes, wrapped for the
 * benchmark only): compute dispatches, queue submits, bind groups and buffers created, bytes written by
 * queue.writeBuffer, and the time the Node thread slept in Atomics.wait (the engine's way of waiting for
 * the GPU: graph/host-wait.ts). Counts depend on the engine, not on the adapter, so a step's counts on
 * lavapipe are what a GPU will see; its host time (wall minus sleep) is what a fast GPU would wait on.
 */
/* eslint-disable @typescript-eslint/no-explicit-any */

export interface HostCounts {
  dispatches: number;
  submits: number;
  bindGroups: number;
  buffers: number;
  bytesWritten: number;
  /** ms the thread spent asleep in Atomics.wait. */
  sleepMs: number;
}

export interface HostCounters {
  snapshot(): HostCounts;
}

const zero = (): HostCounts => ({ dispatches: 0, submits: 0, bindGroups: 0, buffers: 0, bytesWritten: 0, sleepMs: 0 });

let installed: HostCounters | null = null;

/** Wraps the prototypes once; every later call returns the same counters. */
export function installHostCounters(globals: Record<string, any>): HostCounters {
  if (installed) return installed;
  const c = zero();
  const wrap = (proto: any, name: string, count: (...args: any[]) => void) => {
    const original = proto?.[name];
    if (typeof original !== 'function') return;
    proto[name] = function (...args: any[]) {
      count(...args);
      return original.apply(this, args);
    };
  };
  wrap(globals.GPUComputePassEncoder?.prototype, 'dispatchWorkgroups', () => c.dispatches++);
  wrap(globals.GPUComputePassEncoder?.prototype, 'dispatchWorkgroupsIndirect', () => c.dispatches++);
  wrap(globals.GPUQueue?.prototype, 'submit', () => c.submits++);
  wrap(globals.GPUDevice?.prototype, 'createBindGroup', () => c.bindGroups++);
  wrap(globals.GPUDevice?.prototype, 'createBuffer', () => c.buffers++);
  wrap(globals.GPUQueue?.prototype, 'writeBuffer', (_buffer: unknown, _offset: number, data: any, dataOffset = 0, size?: number) => {
    // ArrayBuffer: offsets and size in bytes; a typed array: in its elements
    const bpe = ArrayBuffer.isView(data) ? ((data as any).BYTES_PER_ELEMENT ?? 1) : 1;
    const length = ArrayBuffer.isView(data) ? data.byteLength / bpe : (data as ArrayBuffer).byteLength;
    c.bytesWritten += (size ?? length - dataOffset) * bpe;
  });
  const wait = Atomics.wait;
  (Atomics as any).wait = function (...args: Parameters<typeof Atomics.wait>) {
    const t0 = performance.now();
    try {
      return wait.apply(Atomics, args);
    } finally {
      c.sleepMs += performance.now() - t0;
    }
  };
  installed = { snapshot: () => ({ ...c }) };
  return installed;
}

/** Per-step counts of `steps` runs of `step`, with the host's busy time (wall minus sleep). */
export async function countSteps(counters: HostCounters, steps: number, step: () => Promise<unknown>): Promise<HostCounts & { wallMs: number; hostMs: number }> {
  const a = counters.snapshot();
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) await step();
  const wall = performance.now() - t0;
  const b = counters.snapshot();
  const per = (k: keyof HostCounts) => (b[k] - a[k]) / steps;
  const out = { dispatches: per('dispatches'), submits: per('submits'), bindGroups: per('bindGroups'), buffers: per('buffers'), bytesWritten: per('bytesWritten'), sleepMs: per('sleepMs') };
  return { ...out, wallMs: wall / steps, hostMs: (wall - (b.sleepMs - a.sleepMs)) / steps };
}
