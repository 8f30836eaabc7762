/**
 * A teacher recognised by what it computes, not by its file: a fixed input through the folded trunk,
 * the per-channel means of layer1..layer3 (64 + 128 + 256 numbers). The shipped BN-folded file and
 * torchvision's `.pth` (real BN statistics, layer4 and fc included) give the same fingerprint up to float
 * rounding (~1e-6 relative); a different network differs by orders of magnitude more.
 */
import type { Runtime } from '../graph/runtime.js';
import type { FoldedTrunk } from './resnet.js';

/** Relative L2 distance under which two fingerprints are the same network. */
export const FINGERPRINT_TOLERANCE = 1e-3;
const SIZE = 64;

/** The probe image: smooth, deterministic, in the ImageNet-normalised range, no two channels alike. */
export function fingerprintInput(): Float32Array {
  const x = new Float32Array(3 * SIZE * SIZE);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < SIZE; i++) {
      for (let j = 0; j < SIZE; j++) x[(c * SIZE + i) * SIZE + j] = 1.5 * Math.sin(0.37 * j + 0.71 * i + 1.9 * c) * Math.cos(0.13 * i - 0.29 * j * (c + 1));
    }
  }
  return x;
}

export async function teacherFingerprint(rt: Runtime, teacher: FoldedTrunk): Promise<number[]> {
  const feats = await rt.tidyAsync(async () => {
    const f = teacher.forward(rt.tensor(fingerprintInput(), [1, 3, SIZE, SIZE]));
    return Promise.all(f.map(async (t) => ({ data: await t.read(), c: t.shape[1], hw: t.shape[2] * t.shape[3] })));
  });
  const out: number[] = [];
  for (const { data, c, hw } of feats) {
    for (let k = 0; k < c; k++) {
      let s = 0;
      for (let i = 0; i < hw; i++) s += data[k * hw + i];
      out.push(Number((s / hw).toPrecision(7)));
    }
  }
  return out;
}

/** ||a - b|| / ||b||; Infinity when the lengths differ. */
export function fingerprintDistance(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) return Infinity;
  let d = 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    d += (a[i] - b[i]) ** 2;
    n += b[i] ** 2;
  }
  return Math.sqrt(d / Math.max(n, 1e-30));
}

/**
 * Why `teacher` is not the network whose fingerprint a run recorded, as a phrase, or null when it is the
 * same network (or the run recorded none). The one teacher check of loading and of resuming a run.
 */
export async function teacherMismatch(rt: Runtime, teacher: FoldedTrunk, recorded: readonly number[] | undefined): Promise<string | null> {
  if (!recorded) return null;
  const d = fingerprintDistance(await teacherFingerprint(rt, teacher), recorded);
  return d <= FINGERPRINT_TOLERANCE ? null : `its features differ from the run's teacher by ${d.toExponential(2)} (relative; the same network is below ${FINGERPRINT_TOLERANCE})`;
}
