/** Weight files: safetensors and .pth (restricted unpickler) give identical tensors; bad files are refused. */
import { readFileSync } from 'node:fs';
import { zipSync, strToU8 } from 'fflate';
import { describe, expect, it } from 'vitest';
import { readPth, readSafetensors, readStateDict, toFloat32, writeSafetensors, fromFloat32, int64Scalar } from '../src/model/weights/index.js';
import { itShared, sharedPath, shippedTeacher } from './shared.js';

const weights = (f: string) => sharedPath(`weights/${f}`);
const PTH = 'weights/resnet18-imagenet-layer1to3.pth';

describe('weight files', () => {
  itShared('the .pth and the shipped .safetensors teacher load to identical tensors', [PTH], () => {
    const st = readSafetensors(readFileSync(shippedTeacher));
    const pth = readPth(readFileSync(weights('resnet18-imagenet-layer1to3.pth')));
    expect([...pth.keys()].sort()).toEqual([...st.keys()].sort());
    expect(st.size).toBe(90);
    for (const [k, a] of st) {
      const b = pth.get(k)!;
      expect(b.shape, k).toEqual(a.shape);
      expect(b.dtype, k).toBe(a.dtype);
      expect(Buffer.compare(Buffer.from(a.bytes), Buffer.from(b.bytes)), k).toBe(0);
    }
    expect(st.get('conv1.weight')!.shape).toEqual([64, 3, 7, 7]);
    expect(toFloat32(st.get('bn1.num_batches_tracked')!).length).toBe(1);
  });

  it('rejects a pickle with a foreign global (os.system) without running it', () => {
    // protocol 2: GLOBAL 'os system', ('echo pwned',), REDUCE, STOP
    const pkl = new Uint8Array([0x80, 0x02, ...strToU8('cos\nsystem\n'), 0x58, 10, 0, 0, 0, ...strToU8('echo pwned'), 0x85, 0x52, 0x2e]);
    const zip = zipSync({ 'archive/data.pkl': pkl, 'archive/version': strToU8('3\n') });
    expect(() => readStateDict(zip, 'evil.pth')).toThrow(/evil\.pth: forbidden global 'os\.system'/);
  });

  it('refuses truncated and foreign files with the file name and the problem', () => {
    const st = readFileSync(shippedTeacher);
    expect(() => readStateDict(st.subarray(0, st.length - 1000), 'cut.safetensors')).toThrow(/cut\.safetensors: truncated: tensor '.*' ends at byte \d+ of the data section, which has \d+/);
    expect(() => readStateDict(st.subarray(0, 100), 'cut2.safetensors')).toThrow(/cut2\.safetensors: truncated or not a safetensors file/);
    expect(() => readStateDict(strToU8('hello, this is not a weights file'), 'notes.txt')).toThrow(/notes\.txt: /);
  });

  itShared('refuses a truncated .pth with the file name', [PTH], () => {
    const pth = readFileSync(weights('resnet18-imagenet-layer1to3.pth'));
    expect(() => readStateDict(pth.subarray(0, 5000), 'cut.pth')).toThrow(/cut\.pth: /);
  });

  it('writes safetensors that read back exactly', () => {
    const a = fromFloat32(Float32Array.from([1.5, -2, 3.25, 0]), [2, 2]);
    const bytes = writeSafetensors([['a', a], ['n', int64Scalar(42)]], { format: 'pt' });
    const back = readSafetensors(bytes);
    expect(Array.from(toFloat32(back.get('a')!))).toEqual([1.5, -2, 3.25, 0]);
    expect(back.get('a')!.shape).toEqual([2, 2]);
    expect(toFloat32(back.get('n')!)[0]).toBe(42);
    expect(back.get('n')!.dtype).toBe('I64');
  });
});
