/**
 * The onnxruntime-web peers on the same Dawn adapter: the C++ WebGPU execution provider
 * (`onnxruntime-web/webgpu`) and the older JavaScript one, JSEP (`onnxruntime-web/all`), running the same
 * exported ONNX model as onnxruntime-node (src/export/onnx.ts).
 *
 * Two things make ort-web run in Node:
 * - its wasm memory is always a SharedArrayBuffer, whose views Dawn's Node binding rejects (writeBuffer
 *   "Invalid argument", or a crash): `copySharedViews` makes the binding's writeBuffer / writeTexture and
 *   the encoders' setBindGroup copy such views first (views of ordinary memory pass through untouched);
 * - V8 tiers its 28 MB wasm up in the background and the first session waits ~55 s for it: the harness
 *   runs wasm with Liftoff only (`--liftoff-only`, set before ort-web's module is compiled). That slows
 *   ort-web's CPU-side wasm, not its GPU work.
 * While it waits for the GPU, Dawn's binding polls from setImmediate and spins the Node thread, as it does
 * for tfjs (`--peer-wait sleep` makes the thread sleep between polls for both peers).
 */
/* eslint-disable @typescript-eslint/no-explicit-any */
import { setFlagsFromString } from 'node:v8';
import { waitAs, type HostWait } from '../../src/graph/host-wait.js';

export type OrtWebBuild = 'webgpu' | 'jsep';

export interface OrtWebPeer {
  build: OrtWebBuild;
  version: string;
  run: (x: Float32Array, batch: number) => Promise<Float32Array>;
  release: () => Promise<void>;
}

let patched = false;

/** Makes Dawn's binding accept views of a SharedArrayBuffer by copying them (idempotent). */
export function copySharedViews(globals: Record<string, any>): void {
  if (patched) return;
  patched = true;
  const shared = (d: unknown): d is ArrayBufferView => ArrayBuffer.isView(d) && d.buffer instanceof SharedArrayBuffer;
  const bytes = (v: ArrayBufferView, offsetElems = 0, sizeElems?: number) => {
    const bpe = (v as any).BYTES_PER_ELEMENT ?? 1;
    const start = v.byteOffset + offsetElems * bpe;
    const length = sizeElems !== undefined ? sizeElems * bpe : v.byteLength - offsetElems * bpe;
    return new Uint8Array(v.buffer, start, length).slice();
  };
  const queue = globals.GPUQueue.prototype;
  const writeBuffer = queue.writeBuffer;
  queue.writeBuffer = function (buffer: unknown, offset: number, data: any, dataOffset?: number, size?: number) {
    if (shared(data)) return writeBuffer.call(this, buffer, offset, bytes(data, dataOffset, size));
    if (data instanceof SharedArrayBuffer) return writeBuffer.call(this, buffer, offset, bytes(new Uint8Array(data), dataOffset, size));
    return writeBuffer.call(this, buffer, offset, data, dataOffset, size);
  };
  const writeTexture = queue.writeTexture;
  queue.writeTexture = function (destination: unknown, data: any, layout: unknown, size: unknown) {
    return writeTexture.call(this, destination, shared(data) ? bytes(data) : data, layout, size);
  };
  for (const name of ['GPUComputePassEncoder', 'GPURenderPassEncoder', 'GPURenderBundleEncoder']) {
    const proto = globals[name]?.prototype;
    if (!proto) continue;
    const setBindGroup = proto.setBindGroup;
    proto.setBindGroup = function (index: number, group: unknown, offsets?: any, start?: number, length?: number) {
      if (shared(offsets)) {
        const all = offsets as Uint32Array;
        return setBindGroup.call(this, index, group, Array.from(all.subarray(start ?? 0, (start ?? 0) + (length ?? all.length))));
      }
      return offsets === undefined ? setBindGroup.call(this, index, group) : setBindGroup.call(this, index, group, offsets, start, length);
    };
  }
}

/** An inference session of `model` on ort-web's WebGPU provider (`build`), on navigator.gpu's adapter. */
export async function loadOrtWeb(build: OrtWebBuild, model: Uint8Array, size: number, globals: Record<string, any>, hostWait: HostWait): Promise<OrtWebPeer> {
  copySharedViews(globals);
  setFlagsFromString('--liftoff-only');
  const ort: any = await import(build === 'webgpu' ? 'onnxruntime-web/webgpu' : 'onnxruntime-web/all');
  ort.env.logLevel = 'error';
  ort.env.wasm.numThreads = 1; // its CPU side stays off the adapter's cores (lavapipe's workers)
  const session = await ort.InferenceSession.create(model, { executionProviders: ['webgpu'], graphOptimizationLevel: 'all' });
  return {
    build,
    version: ort.env.versions?.web ?? 'unknown',
    run: async (x, batch) => {
      const out = await waitAs(hostWait, session.run({ image: new ort.Tensor('float32', x, [batch, 3, size, size]) }) as Promise<Record<string, { data: Float32Array }>>);
      return out.map.data;
    },
    release: () => session.release(),
  };
}
