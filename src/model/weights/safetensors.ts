/**
 * safetensors: an 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}},
 * then the raw little-endian bytes. Small enough to read and write here, with strict validation
 * (no npm package for it is both maintained and browser-ready).
 */

export type SafeDType = 'F32' | 'F16' | 'F64' | 'I64' | 'I32' | 'U8';

export interface RawTensor {
  dtype: SafeDType;
  shape: number[];
  /** Little-endian bytes, exactly numel * itemsize long. */
  bytes: Uint8Array;
}

const ITEMSIZE: Record<SafeDType, number> = { F32: 4, F16: 2, F64: 8, I64: 8, I32: 4, U8: 1 };

export class WeightFileError extends Error {}

/** A non-negative safe integer (sizes, strides, offsets read from untrusted files). */
export const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

export function readSafetensors(data: Uint8Array, file = 'safetensors file'): Map<string, RawTensor> {
  const fail = (what: string): never => {
    throw new WeightFileError(`${file}: ${what}`);
  };
  if (data.length < 8) fail(`not a safetensors file (${data.length} bytes, too short for a header)`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen > data.length - 8) fail(`truncated or not a safetensors file: header claims ${headerLen} bytes, the file has ${data.length - 8} after the length`);
  if (headerLen > 100 * 2 ** 20) fail(`not a safetensors file: a ${headerLen}-byte header (the format allows 100 MB)`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder().decode(data.subarray(8, 8 + headerLen)));
  } catch (e) {
    return fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) fail(`header is not a JSON object (${JSON.stringify(header)?.slice(0, 40)})`);
  const body = data.subarray(8 + headerLen);
  const out = new Map<string, RawTensor>();
  const spans: Array<[number, number, string]> = [];
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') continue;
    const e = entry as { dtype?: string; shape?: number[]; data_offsets?: [number, number] };
    if (!e || typeof e.dtype !== 'string' || !(e.dtype in ITEMSIZE)) fail(`tensor '${name}' has unsupported dtype ${e?.dtype}`);
    if (!Array.isArray(e.shape) || !e.shape.every(isCount)) fail(`tensor '${name}' has an invalid shape ${JSON.stringify(e.shape)}`);
    if (!Array.isArray(e.data_offsets) || e.data_offsets.length !== 2 || !e.data_offsets.every(isCount)) fail(`tensor '${name}' has invalid data_offsets ${JSON.stringify(e.data_offsets)}`);
    const [begin, end] = e.data_offsets!;
    const numel = e.shape!.reduce((a, b) => a * b, 1);
    const expected = numel * ITEMSIZE[e.dtype as SafeDType];
    if (end - begin !== expected) fail(`tensor '${name}' ${JSON.stringify(e.shape)} ${e.dtype} needs ${expected} bytes, data_offsets give ${end - begin}`);
    if (end > body.length) fail(`truncated: tensor '${name}' ends at byte ${end} of the data section, which has ${body.length}`);
    spans.push([begin, end, name]);
    out.set(name, { dtype: e.dtype as SafeDType, shape: e.shape!, bytes: body.subarray(begin, end) });
  }
  spans.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i][0] < spans[i - 1][1]) fail(`tensors '${spans[i - 1][2]}' and '${spans[i][2]}' overlap in the data section (bytes ${spans[i][0]}..${spans[i - 1][1]})`);
  }
  return out;
}

export function writeSafetensors(tensors: ReadonlyArray<[string, RawTensor]>, metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of tensors) {
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.length] };
    offset += t.bytes.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + json.length) % 8)) % 8); // data section 8-byte aligned
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const [, t] of tensors) {
    out.set(t.bytes, at);
    at += t.bytes.length;
  }
  return out;
}

/** A tensor's values as float32 (F16/F64/I64/I32/U8 are converted). */
export function toFloat32(t: RawTensor): Float32Array {
  const n = t.shape.reduce((a, b) => a * b, 1);
  const v = new DataView(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength);
  const out = new Float32Array(n);
  switch (t.dtype) {
    case 'F32': for (let i = 0; i < n; i++) out[i] = v.getFloat32(4 * i, true); break;
    case 'F64': for (let i = 0; i < n; i++) out[i] = v.getFloat64(8 * i, true); break;
    case 'F16': for (let i = 0; i < n; i++) out[i] = halfToFloat(v.getUint16(2 * i, true)); break;
    case 'I64': for (let i = 0; i < n; i++) out[i] = Number(v.getBigInt64(8 * i, true)); break;
    case 'I32': for (let i = 0; i < n; i++) out[i] = v.getInt32(4 * i, true); break;
    case 'U8': for (let i = 0; i < n; i++) out[i] = v.getUint8(i); break;
  }
  return out;
}

/** `toFloat32`, refusing a non-finite value with the file and tensor named (damaged weights). */
export function finiteFloat32(t: RawTensor, name: string, file: string): Float32Array {
  const v = toFloat32(t);
  const bad = v.findIndex((x) => !Number.isFinite(x));
  if (bad >= 0) throw new WeightFileError(`${file}: tensor ${name} holds a non-finite value (${v[bad]} at index ${bad}): the weights are damaged`);
  return v;
}

export function fromFloat32(data: Float32Array, shape: number[]): RawTensor {
  const bytes = new Uint8Array(data.length * 4);
  const v = new DataView(bytes.buffer);
  for (let i = 0; i < data.length; i++) v.setFloat32(4 * i, data[i], true);
  return { dtype: 'F32', shape, bytes };
}

export function int64Scalar(value: number): RawTensor {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigInt64(0, BigInt(value), true);
  return { dtype: 'I64', shape: [], bytes };
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}
