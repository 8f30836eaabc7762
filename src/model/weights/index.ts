/** Loading state_dicts from .safetensors or .pth files (format detected from the bytes). */
import { readPth } from './pth.js';
import { readSafetensors, WeightFileError, type RawTensor } from './safetensors.js';

export { WeightFileError, readSafetensors, writeSafetensors, toFloat32, finiteFloat32, fromFloat32, int64Scalar, type RawTensor } from './safetensors.js';
export { readPth } from './pth.js';

export function readStateDict(data: Uint8Array, file = 'weights'): Map<string, RawTensor> {
  if (data.length >= 4 && data[0] === 0x50 && data[1] === 0x4b) return readPth(data, file); // "PK": zip
  if (data.length >= 2 && data[0] === 0x80 && data[1] <= 5) {
    throw new WeightFileError(`${file}: a legacy (pre-1.6, non-zip) PyTorch file: not supported; re-save it with torch.save(torch.load(f), 'new.pth') in a recent PyTorch`);
  }
  if (data.length >= 8) return readSafetensors(data, file);
  throw new WeightFileError(`${file}: too short to be a weights file (${data.length} bytes)`);
}
