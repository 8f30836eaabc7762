/** Weight files: safetensors and .pth (restricted unpickler) give identical tensors; bad files are refused. */
import { readFileSync } from 'node:fs';
import { zipSync, strToU8 } from 'fflate';
import { describe, expect, it } from 'vitest';
import { readPth, readSafetensors, readStateDict, toFloat32, writeSafetensors, fromFloat32, int64Scalar } from '../src/model/weights/index.js';
import { PTH_LIMITS } from '../src/model/weights/pth.js';
import { ResNetTrunk } from '../src/model/resnet.js';
import { useRuntime } from './helpers.js';
import { itShared, sharedPath, shippedTeacher } from './shared.js';

const weights = (f: string) => sharedPath(`weights/${f}`);
const PTH = 'weights/resnet18-imagenet-layer1to3.pth';
const ctx = useRuntime();

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

describe('hostile and wrong weight files (tools/make_hostile_files.py)', () => {
  const hostile = (f: string) => new Uint8Array(readFileSync(new URL(`./fixtures/hostile/${f}`, import.meta.url)));
  const teacherSd = () => readSafetensors(readFileSync(shippedTeacher));

  it('a .pth of stride-0 views and a zip bomb are refused before allocating (memory stays flat)', () => {
    const before = process.memoryUsage().rss;
    expect(() => readStateDict(hostile('stride0.pth'), 'stride0.pth')).toThrow(/^stride0\.pth: tensor of size \[8192,8192\] has 67108864 elements but its storage only 1$/);
    expect(() => readStateDict(hostile('zipbomb.pth'), 'zipbomb.pth')).toThrow(/^zipbomb\.pth: the zip declares more than 512 MiB of content: refused before inflating/);
    const bomb = hostile('zipbomb.pth');
    const saved = PTH_LIMITS.maxBytes;
    PTH_LIMITS.maxBytes = 2 ** 30; // past the size limit, the ratio check still refuses it
    try {
      expect(() => readStateDict(bomb, 'zipbomb.pth')).toThrow(/zipbomb\.pth: zip entry archive\/data\/0 inflates \d+-fold .* refused as a zip bomb/);
    } finally {
      PTH_LIMITS.maxBytes = saved;
    }
    expect(process.memoryUsage().rss - before).toBeLessThan(150 * 2 ** 20);
  });

  it('a legacy (non-zip) .pth and a safetensors file with a null header are named as such', () => {
    expect(() => readStateDict(hostile('legacy.pth'), 'old.pth')).toThrow(/^old\.pth: a legacy \(pre-1\.6, non-zip\) PyTorch file: not supported; re-save it/);
    const header = new TextEncoder().encode('null    ');
    const st = new Uint8Array(8 + header.length);
    new DataView(st.buffer).setBigUint64(0, BigInt(header.length), true);
    st.set(header, 8);
    expect(() => readStateDict(st, 'null.safetensors')).toThrow(/^null\.safetensors: header is not a JSON object \(null\)$/);
  });

  it('overlapping safetensors offsets, integer conv weights, extra blocks (ResNet34) and non-finite values are refused by name', () => {
    const a = fromFloat32(new Float32Array(4), [4]);
    const bytes = writeSafetensors([['a', a], ['b', a]]);
    // point b's data at a's bytes
    const text = new TextDecoder().decode(bytes);
    const patched = new TextEncoder().encode(text.replace('"data_offsets":[16,32]', '"data_offsets":[ 8,24]'));
    expect(() => readStateDict(patched, 'overlap.safetensors')).toThrow(/^overlap\.safetensors: tensors 'a' and 'b' overlap in the data section/);

    const rt = ctx.rt;
    const sd = teacherSd();
    const i64 = new Map(sd);
    const w = sd.get('layer1.0.conv1.weight')!;
    i64.set('layer1.0.conv1.weight', { dtype: 'I64', shape: w.shape, bytes: new Uint8Array(w.bytes.length * 2) });
    expect(() => ResNetTrunk.fromStateDict(rt, i64, 'int.safetensors')).toThrow(/int\.safetensors: not a ResNet18 .*\n\s+layer1\.0\.conv1\.weight: I64, expected a float tensor/);

    const r34 = new Map(sd);
    r34.set('layer1.2.conv1.weight', fromFloat32(new Float32Array(64 * 64 * 9), [64, 64, 3, 3]));
    r34.set('layer3.5.bn2.weight', fromFloat32(new Float32Array(256), [256]));
    expect(() => ResNetTrunk.fromStateDict(rt, r34, 'resnet34.pth')).toThrow(/resnet34\.pth: not a ResNet18 .*\n\s+2 tensor\(s\) no ResNet18 has .*: layer1\.2\.conv1\.weight, layer3\.5\.bn2\.weight/);
    const wrong4 = new Map(sd);
    wrong4.set('fc.weight', fromFloat32(new Float32Array(10 * 512), [10, 512]));
    expect(() => ResNetTrunk.fromStateDict(rt, wrong4, 'fc.pth')).toThrow(/fc\.weight: expected \[1000,512\] \(ResNet18\), found \[10,512\]/);

    const nan = new Map(sd);
    const v = toFloat32(sd.get('layer2.1.bn2.running_var')!);
    v[7] = Infinity;
    nan.set('layer2.1.bn2.running_var', fromFloat32(v, [v.length]));
    expect(() => ResNetTrunk.fromStateDict(rt, nan, 'inf.safetensors')).toThrow(/^inf\.safetensors: tensor layer2\.1\.bn2\.running_var holds a non-finite value \(Infinity at index 7\)/);
  });
});
