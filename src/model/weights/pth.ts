/**
 * PyTorch `.pth` (torch.save zip format) reader for state_dicts, with a restricted unpickler: it
 * interprets only the pickle opcodes a state_dict uses and accepts only the globals torch writes for one
 * (OrderedDict, the tensor/parameter rebuild helpers, storage types). Any other global, such as
 * `os.system`, is rejected with an error before anything is called: loading never executes code.
 */
import { unzipSync } from 'fflate';
import { isCount, WeightFileError, type RawTensor, type SafeDType } from './safetensors.js';

const STORAGE_DTYPES: Record<string, SafeDType> = {
  FloatStorage: 'F32',
  DoubleStorage: 'F64',
  HalfStorage: 'F16',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ByteStorage: 'U8',
};
const ITEMSIZE: Record<SafeDType, number> = { F32: 4, F16: 2, F64: 8, I64: 8, I32: 4, U8: 1 };

class Global {
  constructor(readonly module: string, readonly name: string) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}
class PickleDict extends Map<unknown, unknown> {}
class Storage {
  constructor(readonly dtype: SafeDType, readonly bytes: Uint8Array) {}
}
class TensorValue {
  constructor(readonly raw: RawTensor) {}
}
const MARK = Symbol('mark');

const ALLOWED = new Set([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
  ...Object.keys(STORAGE_DTYPES).map((s) => `torch.${s}`),
]);

/** Most bytes a .pth may inflate to (a ResNet18 state_dict is 46 MB), and the largest compression ratio. */
export const PTH_LIMITS = { maxBytes: 512 * 2 ** 20, maxRatio: 100 };

export function readPth(data: Uint8Array, file = '.pth file'): Map<string, RawTensor> {
  const fail = (what: string): never => {
    throw new WeightFileError(`${file}: ${what}`);
  };
  let entries: Record<string, Uint8Array>;
  // Sizes are checked from the zip's directory before anything is inflated (fflate never writes past the
  // declared size, so a directory that lies cannot make it allocate more): no zip bomb gets inflated.
  let total = 0;
  const bounded = (f: { name: string; size: number; originalSize: number; compression: number }) => {
    total += f.originalSize;
    if (total > PTH_LIMITS.maxBytes) fail(`the zip declares more than ${PTH_LIMITS.maxBytes / 2 ** 20} MiB of content: refused before inflating (not a ResNet state_dict, or a zip bomb)`);
    if (f.compression !== 0 && f.originalSize > PTH_LIMITS.maxRatio * Math.max(f.size, 1)) {
      fail(`zip entry ${f.name} inflates ${Math.round(f.originalSize / Math.max(f.size, 1))}-fold (${f.size} to ${f.originalSize} bytes): refused as a zip bomb`);
    }
    return true;
  };
  try {
    entries = unzipSync(data, { filter: bounded });
  } catch (e) {
    if (e instanceof WeightFileError) throw e;
    return fail(`not a PyTorch zip checkpoint (${(e as Error).message}); legacy non-zip .pth files are not supported, re-save with torch.save`);
  }
  const pklName = Object.keys(entries).find((n) => n === 'data.pkl' || n.endsWith('/data.pkl'));
  if (!pklName) return fail('no data.pkl inside the zip: not a torch.save checkpoint');
  const prefix = pklName.slice(0, pklName.length - 'data.pkl'.length);
  const loadStorage = (pid: unknown[]): Storage => {
    const [kind, type, key] = pid;
    if (kind !== 'storage' || !(type instanceof Global) || !(type.name in STORAGE_DTYPES)) {
      return fail(`unsupported persistent id ${JSON.stringify(pid.map(String))}`);
    }
    const bytes = entries[`${prefix}data/${String(key)}`];
    if (!bytes) return fail(`missing storage data/${String(key)} in the zip (truncated file?)`);
    return new Storage(STORAGE_DTYPES[type.name], bytes);
  };
  const value = unpickle(entries[pklName], loadStorage, fail);
  if (!(value instanceof PickleDict)) return fail('the pickle does not hold a state_dict (a dict of tensors)');
  const out = new Map<string, RawTensor>();
  for (const [k, v] of value) {
    if (typeof k !== 'string') return fail('state_dict keys must be strings');
    if (v instanceof TensorValue) out.set(k, v.raw);
    // non-tensor entries (e.g. nested metadata) are ignored
  }
  return out;
}

function call(fn: Global, args: unknown[], fail: (what: string) => never): unknown {
  switch (fn.qualified) {
    case 'collections.OrderedDict':
      return new PickleDict();
    case 'torch._utils._rebuild_parameter':
      return args[0];
    case 'torch._utils._rebuild_tensor_v2': {
      const [storage, offset, size, stride] = args as [Storage, number, number[], number[]];
      if (!(storage instanceof Storage)) return fail('tensor without storage');
      return new TensorValue(viewOf(storage, offset, size, stride, fail));
    }
    default:
      return fail(`forbidden global ${fn.qualified} called`);
  }
}

/**
 * Copies a (possibly strided) view out of a storage into contiguous bytes. The view is checked against
 * its storage first (integer sizes, no repeated elements, every index inside), so the copy is never
 * larger than the bytes the file really holds.
 */
function viewOf(s: Storage, offset: number, size: number[], stride: number[], fail: (w: string) => never): RawTensor {
  const item = ITEMSIZE[s.dtype];
  const count = Math.floor(s.bytes.length / item);
  if (!isCount(offset) || !Array.isArray(size) || !Array.isArray(stride) || size.length !== stride.length || !size.every(isCount) || !stride.every(isCount)) {
    fail(`tensor with an invalid view (offset ${offset}, size ${JSON.stringify(size)}, stride ${JSON.stringify(stride)})`);
  }
  const numel = size.reduce((a, b) => a * b, 1);
  if (numel > count) fail(`tensor of size [${size}] has ${numel} elements but its storage only ${count}`);
  if (size.some((d, i) => d > 1 && stride[i] === 0)) fail(`tensor of size [${size}] repeats its elements (stride 0): not a stored weight`);
  const last = numel === 0 ? offset : offset + size.reduce((a, d, i) => a + (d - 1) * stride[i], 0);
  if (last >= count && numel > 0) fail(`tensor of size [${size}] reads past the end of its storage (truncated file?)`);
  const out = new Uint8Array(numel * item);
  const rank = size.length;
  const idx = new Array(rank).fill(0);
  for (let i = 0; i < numel; i++) {
    let src = offset;
    for (let d = 0; d < rank; d++) src += idx[d] * stride[d];
    const at = src * item;
    if (at + item > s.bytes.length) fail(`tensor of size [${size}] reads past the end of its storage (truncated file?)`);
    out.set(s.bytes.subarray(at, at + item), i * item);
    for (let d = rank - 1; d >= 0; d--) {
      if (++idx[d] < size[d]) break;
      idx[d] = 0;
    }
  }
  return { dtype: s.dtype, shape: [...size], bytes: out };
}

function unpickle(data: Uint8Array, persistentLoad: (pid: unknown[]) => unknown, fail: (what: string) => never): unknown {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const text = new TextDecoder();
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  let pos = 0;
  const need = (n: number) => {
    if (pos + n > data.length) fail('truncated pickle');
  };
  const u8 = () => (need(1), data[pos++]);
  const u16 = () => (need(2), (pos += 2), view.getUint16(pos - 2, true));
  const u32 = () => (need(4), (pos += 4), view.getUint32(pos - 4, true));
  const i32 = () => (need(4), (pos += 4), view.getInt32(pos - 4, true));
  const bytes = (n: number) => (need(n), (pos += n), data.subarray(pos - n, pos));
  const line = () => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0) fail('truncated pickle');
    const s = text.decode(data.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const popMark = (): unknown[] => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) fail('pickle MARK missing');
    const items = stack.splice(i);
    items.shift();
    return items;
  };
  const top = () => stack[stack.length - 1];
  const makeGlobal = (module: string, name: string) => {
    const g = new Global(module, name);
    if (!ALLOWED.has(g.qualified)) {
      fail(`forbidden global '${g.qualified}' in the pickle: only state_dicts of tensors are accepted (nothing is executed)`);
    }
    return g;
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: bytes(8); break; // FRAME
      case 0x2e: return stack.pop(); // STOP
      case 0x28: stack.push(MARK); break; // MARK
      case 0x7d: stack.push(new PickleDict()); break; // EMPTY_DICT
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x74: stack.push(popMark()); break; // TUPLE
      case 0x85: stack.push([stack.pop()]); break; // TUPLE1
      case 0x86: { const b = stack.pop(); const a = stack.pop(); stack.push([a, b]); break; } // TUPLE2
      case 0x87: { const c = stack.pop(); const b = stack.pop(); const a = stack.pop(); stack.push([a, b, c]); break; } // TUPLE3
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x4a: stack.push(i32()); break; // BININT
      case 0x8a: { // LONG1
        const n = u8();
        const b = bytes(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
        if (n > 0 && b[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        stack.push(Number(v));
        break;
      }
      case 0x47: need(8); stack.push(view.getFloat64(pos, false)); pos += 8; break; // BINFLOAT
      case 0x58: stack.push(text.decode(bytes(u32()))); break; // BINUNICODE
      case 0x8c: stack.push(text.decode(bytes(u8()))); break; // SHORT_BINUNICODE
      case 0x43: stack.push(bytes(u8())); break; // SHORT_BINBYTES
      case 0x42: stack.push(bytes(u32())); break; // BINBYTES
      case 0x63: { const module = line(); const name = line(); stack.push(makeGlobal(module, name)); break; } // GLOBAL
      case 0x93: { const name = stack.pop(); const module = stack.pop(); stack.push(makeGlobal(String(module), String(name))); break; } // STACK_GLOBAL
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: stack.push(memo.get(u8())); break; // BINGET
      case 0x6a: stack.push(memo.get(u32())); break; // LONG_BINGET
      case 0x51: stack.push(persistentLoad(stack.pop() as unknown[])); break; // BINPERSID
      case 0x52: { // REDUCE
        const args = stack.pop() as unknown[];
        const fn = stack.pop();
        if (!(fn instanceof Global)) fail('REDUCE on something that is not an allowed global');
        stack.push(call(fn as Global, args, fail));
        break;
      }
      case 0x62: stack.pop(); break; // BUILD: state of an OrderedDict / tensor (metadata), ignored
      case 0x61: { const v = stack.pop(); (top() as unknown[]).push(v); break; } // APPEND
      case 0x65: { const items = popMark(); (top() as unknown[]).push(...items); break; } // APPENDS
      case 0x73: { const v = stack.pop(); const k = stack.pop(); setItem(top(), k, v, fail); break; } // SETITEM
      case 0x75: { // SETITEMS
        const items = popMark();
        for (let i = 0; i + 1 < items.length; i += 2) setItem(top(), items[i], items[i + 1], fail);
        break;
      }
      default:
        fail(`unsupported pickle opcode 0x${op.toString(16)} at byte ${pos - 1}: not a plain state_dict`);
    }
  }
}

function setItem(target: unknown, k: unknown, v: unknown, fail: (w: string) => never): void {
  if (!(target instanceof PickleDict)) fail('SETITEM on something that is not a dict');
  (target as PickleDict).set(k, v);
}
