/**
 * JPEG decoding with libjpeg-turbo's decoder (MozJPEG's build of it, WebAssembly, from @jsquash/jpeg):
 * the default integer IDCT and fancy upsampling, as PIL decodes, so the pixels are bit-identical to
 * `Image.open(f).convert('RGB')` for baseline, progressive, grayscale and every chroma subsampling.
 * The module is instantiated once when this file is imported (top-level await): in Node from the
 * package's .wasm file, in a browser (or bundler) through the URL the Emscripten loader resolves.
 */
import mozjpegFactory from '@jsquash/jpeg/codec/dec/mozjpeg_dec.js';

interface MozJpegDecoder {
  decode(data: Uint8Array, preserveOrientation: boolean): { data: Uint8ClampedArray; width: number; height: number } | null;
}

type Factory = (options: Record<string, unknown>) => Promise<MozJpegDecoder>;

/** libjpeg's messages for the current decode (it prints them; they become the error's text). */
const messages: string[] = [];
const collect = (s: string) => void messages.push(s.trim());

async function instantiate(): Promise<MozJpegDecoder> {
  const factory = mozjpegFactory as unknown as Factory;
  const quiet = { print: collect, printErr: collect };
  const isNode = typeof process === 'object' && typeof process.versions?.node === 'string' && typeof window === 'undefined';
  if (!isNode) return factory({ noInitialRun: true, ...quiet });
  // Node's fetch cannot read file: URLs, so the wasm is read from disk and instantiated here. The module
  // names are variables so that bundlers for browsers leave these Node-only imports alone.
  const [fsName, moduleName] = ['node:fs', 'node:module'];
  const [{ readFileSync }, { createRequire }] = (await Promise.all([import(/* @vite-ignore */ fsName), import(/* @vite-ignore */ moduleName)])) as [typeof import('node:fs'), typeof import('node:module')];
  const wasmPath = createRequire(import.meta.url).resolve('@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm');
  const wasm = new WebAssembly.Module(readFileSync(wasmPath));
  return factory({
    noInitialRun: true,
    ...quiet,
    instantiateWasm: (imports: WebAssembly.Imports, done: (i: WebAssembly.Instance) => void) => {
      const instance = new WebAssembly.Instance(wasm, imports);
      done(instance);
      return instance.exports;
    },
  });
}

const decoder = await instantiate();

/** Width and height from the JPEG's frame header (SOFn), without decoding; null if there is none. */
export function jpegSize(bytes: Uint8Array): { width: number; height: number } | null {
  let i = 2;
  while (i + 9 < bytes.length) {
    if (bytes[i] !== 0xff) return null;
    const marker = bytes[i + 1];
    if (marker === 0xff) {
      i++;
      continue;
    }
    const len = (bytes[i + 2] << 8) | bytes[i + 3];
    const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isSof) return { height: (bytes[i + 5] << 8) | bytes[i + 6], width: (bytes[i + 7] << 8) | bytes[i + 8] };
    if (marker === 0xda) return null; // scan data before any frame header
    i += 2 + len;
  }
  return null;
}

/** Interleaved 8-bit RGBA (libjpeg's output here; gray is replicated), or throws with libjpeg's complaint. */
export function decodeJpegRgba(bytes: Uint8Array): { width: number; height: number; rgba: Uint8ClampedArray } {
  messages.length = 0;
  let img: ReturnType<MozJpegDecoder['decode']>;
  try {
    img = decoder.decode(bytes, false);
  } catch (e) {
    // libjpeg's error_exit ends the decode through exit(1); the decoder stays usable
    throw new Error(messages.filter(Boolean).join('; ') || (e as Error).message);
  }
  if (!img) throw new Error(messages.filter(Boolean).join('; ') || 'libjpeg could not decode it');
  // libjpeg only warns when the data runs out and fills the rest of the image with gray: a truncated file
  // is an error here, as in PIL ("image file is truncated"); other corrupt-data warnings are not (PIL decodes those)
  const truncated = messages.find((m) => /premature end/i.test(m));
  if (truncated) throw new Error(`truncated (${truncated})`);
  return { width: img.width, height: img.height, rgba: img.data };
}
