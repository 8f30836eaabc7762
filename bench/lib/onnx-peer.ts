/**
 * The onnxruntime-node peer (native, CPU): the inference network written as an ONNX graph at bench time
 * (src/export/onnx.ts, the product's `dcam export`) from the same weights the engine runs.
 */
import { cpus } from 'node:os';

export { buildInferenceOnnx } from '../../src/export/onnx.js';

export interface OrtPeer {
  version: string;
  threads: number;
  /** Runs the model on an NCHW batch; resolves with the map. */
  run: (x: Float32Array, batch: number) => Promise<Float32Array>;
  release: () => Promise<void>;
}

export async function loadOrt(model: Uint8Array, size: number): Promise<OrtPeer> {
  const ort = await import('onnxruntime-node');
  const threads = cpus().length;
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: threads, graphOptimizationLevel: 'all' });
  const version = (ort.env as { versions?: { common?: string } }).versions?.common ?? 'unknown';
  return {
    version,
    threads,
    run: async (x, batch) => {
      const out = await session.run({ image: new ort.Tensor('float32', x, [batch, 3, size, size]) });
      return out.map.data as Float32Array;
    },
    release: () => session.release(),
  };
}
