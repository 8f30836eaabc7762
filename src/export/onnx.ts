/**
 * The inference network as one ONNX graph (opset 13): the BN-folded teacher and student trunks (folded BN
 * as conv bias) and the anomaly map (1 - cosine per level, bilinear upsampling with half-pixel centres,
 * sum or product). Written from the same folded weights the engine runs, for onnxruntime and other
 * runtimes; the benchmark uses it as its onnxruntime peer. onnx-proto is loaded on first use only.
 */
import { walkTrunk, type FoldedConv } from '../model/resnet.js';

/** onnx-proto (generated protobuf code of onnx.proto), loaded on first use: a dev dependency. */
async function onnxSchema() {
  return (await import('onnx-proto')).default.onnx;
}
const FLOAT = 1;
const INT64 = 7;
const ATTR_INT = 2;
const ATTR_STRING = 3;
const ATTR_INTS = 7;

type Attr = { name: string; type: number; i?: number; ints?: number[]; s?: Uint8Array };
const int = (name: string, v: number): Attr => ({ name, type: ATTR_INT, i: v });
const ints = (name: string, v: number[]): Attr => ({ name, type: ATTR_INTS, ints: v });
const str = (name: string, v: string): Attr => ({ name, type: ATTR_STRING, s: new TextEncoder().encode(v) });

class GraphBuilder {
  nodes: object[] = [];
  initializers: object[] = [];
  private n = 0;

  constant(name: string, data: Float32Array | BigInt64Array, dims: number[]): string {
    const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
    this.initializers.push({ name, dims, dataType: data instanceof Float32Array ? FLOAT : INT64, rawData: raw });
    return name;
  }

  node(op: string, inputs: string[], attrs: Attr[] = []): string {
    const out = `${op.toLowerCase()}_${this.n++}`;
    this.nodes.push({ opType: op, input: inputs, output: [out], attribute: attrs, name: out });
    return out;
  }
}

/** conv1..layer3 with folded convs; returns the three level outputs. */
function trunk(g: GraphBuilder, prefix: string, x: string, folded: readonly FoldedConv[]): [string, string, string] {
  const convs = new Map(folded.map((c) => [c.conv, c]));
  return walkTrunk<string>({
    conv: (tc, h, relu, residual) => {
      const c = convs.get(tc.conv)!;
      const w = g.constant(`${prefix}.${c.conv}.weight`, c.w, [...c.shape]);
      const b = g.constant(`${prefix}.${c.conv}.bias`, c.b, [c.shape[0]]);
      const y = g.node('Conv', [h, w, b], [ints('kernel_shape', [tc.k, tc.k]), ints('strides', [tc.stride, tc.stride]), ints('pads', [tc.pad, tc.pad, tc.pad, tc.pad])]);
      const sum = residual ? g.node('Add', [y, residual]) : y;
      return relu ? g.node('Relu', [sum]) : sum;
    },
    maxPool: (h) => g.node('MaxPool', [h], [ints('kernel_shape', [3, 3]), ints('strides', [2, 2]), ints('pads', [1, 1, 1, 1])]),
  }, x);
}

/**
 * The serialized model: input `image` [batch, 3, S, S] (ImageNet-normalised, as the engine's input),
 * output `map` [batch, 1, S, S]. `metadata` becomes the model's metadata_props (string key/values).
 */
export async function buildInferenceOnnx(teacher: readonly FoldedConv[], student: readonly FoldedConv[], size: number, aggregation: 'sum' | 'product', metadata: Record<string, string> = {}): Promise<Uint8Array> {
  const onnx = await onnxSchema();
  const g = new GraphBuilder();
  const ft = trunk(g, 'teacher', 'image', teacher);
  const fs = trunk(g, 'student', 'image', student);
  const axes = g.constant('axis1', BigInt64Array.from([1n]), [1]);
  const one = g.constant('one', Float32Array.of(1), []);
  const eps = g.constant('eps', Float32Array.of(1e-8), []);
  const levels = ft.map((t, k) => {
    const dot = g.node('ReduceSum', [g.node('Mul', [t, fs[k]]), axes], [int('keepdims', 1)]);
    const norm = (f: string) => g.node('Sqrt', [g.node('ReduceSumSquare', [f], [ints('axes', [1])])]);
    const cos = g.node('Div', [dot, g.node('Max', [g.node('Mul', [norm(t), norm(fs[k])]), eps])]);
    const factor = size / (size / 2 ** (k + 2));
    const scales = g.constant(`scales${k}`, Float32Array.of(1, 1, factor, factor), [4]);
    return g.node('Resize', [g.node('Sub', [one, cos]), '', scales], [str('mode', 'linear'), str('coordinate_transformation_mode', 'half_pixel')]);
  });
  let map = levels[0];
  for (const m of levels.slice(1)) map = g.node(aggregation === 'sum' ? 'Add' : 'Mul', [map, m]);
  const identity = { opType: 'Identity', input: [map], output: ['map'], name: 'map_out' };
  const tensorType = (dims: Array<number | string>) => ({
    tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } },
  });
  const model = onnx.ModelProto.create({
    irVersion: 7,
    producerName: 'dcam-webgpu',
    metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'dcam_inference',
      node: [...g.nodes, identity],
      initializer: g.initializers,
      input: [{ name: 'image', type: tensorType(['batch', 3, size, size]) }],
      output: [{ name: 'map', type: tensorType(['batch', 1, size, size]) }],
    },
  } as never);
  return onnx.ModelProto.encode(model).finish();
}

