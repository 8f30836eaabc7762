/**
 * A seeded synthetic anomaly-detection dataset in the MVTec AD layout, for tests and the built-in default
 * run: procedural textures and objects, with scratches, spots, cracks and missing parts whose ground-truth
 * masks are exact (the pixels the defect changed).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encode } from 'fast-png';
import { Rng } from '../nn/init.js';

export type SyntheticKind = 'texture' | 'object';
export type DefectKind = 'scratch' | 'spot' | 'crack' | 'missing';

export interface SyntheticOptions {
  seed?: number;
  size?: number;
  /** Category name -> kind; default one texture and one object category. */
  categories?: Record<string, SyntheticKind>;
  train?: number;
  testGood?: number;
  /** Test images per defect type. */
  testPerDefect?: number;
}

interface Canvas {
  size: number;
  rgb: Float32Array;
}

const DEFECTS: Record<SyntheticKind, DefectKind[]> = {
  texture: ['scratch', 'spot', 'crack'],
  object: ['scratch', 'spot', 'missing'],
};

function texture(size: number, rng: Rng, tint: number[]): Canvas {
  const rgb = new Float32Array(size * size * 3);
  const phase = rng.uniform(0, 2 * Math.PI);
  const l1 = size / 6;
  const l2 = size / 9;
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const v = 128 + 45 * Math.sin((2 * Math.PI * x) / l1 + phase) * Math.sin((2 * Math.PI * y) / l2) + 8 * rng.normal();
      for (let c = 0; c < 3; c++) rgb[(y * size + x) * 3 + c] = v * tint[c];
    }
  return { size, rgb };
}

interface Disc {
  cx: number;
  cy: number;
  r: number;
}

function object(size: number, rng: Rng, tint: number[]): { canvas: Canvas; disc: Disc } {
  const rgb = new Float32Array(size * size * 3);
  const disc = { cx: size / 2 + rng.uniform(-1.5, 1.5), cy: size / 2 + rng.uniform(-1.5, 1.5), r: size * 0.3 };
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const d = Math.hypot(x + 0.5 - disc.cx, y + 0.5 - disc.cy);
      const inside = d < disc.r;
      const ring = inside ? 30 * Math.cos((d / disc.r) * 3 * Math.PI) : 0;
      const v = (inside ? 170 + ring : 40) + 5 * rng.normal();
      for (let c = 0; c < 3; c++) rgb[(y * size + x) * 3 + c] = inside ? v * tint[c] : v;
    }
  return { canvas: { size, rgb }, disc };
}

/** Paints the defect and returns its exact mask (pixels that changed). */
function paintDefect(canvas: Canvas, kind: DefectKind, rng: Rng, disc: Disc | null): Uint8Array {
  const { size, rgb } = canvas;
  const mask = new Uint8Array(size * size);
  const set = (x: number, y: number, color: number[]) => {
    const xi = Math.round(x);
    const yi = Math.round(y);
    if (xi < 0 || yi < 0 || xi >= size || yi >= size) return;
    for (let c = 0; c < 3; c++) rgb[(yi * size + xi) * 3 + c] = color[c];
    mask[yi * size + xi] = 255;
  };
  const cx = disc ? disc.cx : size / 2;
  const cy = disc ? disc.cy : size / 2;
  const reach = disc ? disc.r * 0.7 : size * 0.35;
  if (kind === 'scratch') {
    const a = rng.uniform(0, Math.PI);
    const len = size * rng.uniform(0.25, 0.45);
    const x0 = cx + rng.uniform(-reach, reach) * 0.5;
    const y0 = cy + rng.uniform(-reach, reach) * 0.5;
    const color = [235, 235, 235];
    for (let t = -len / 2; t <= len / 2; t += 0.5) {
      set(x0 + t * Math.cos(a), y0 + t * Math.sin(a), color);
      set(x0 + t * Math.cos(a) + 0.7 * Math.sin(a), y0 + t * Math.sin(a) - 0.7 * Math.cos(a), color);
    }
  } else if (kind === 'spot') {
    const r = rng.uniform(size * 0.04, size * 0.08);
    const x0 = cx + rng.uniform(-reach, reach);
    const y0 = cy + rng.uniform(-reach, reach);
    const color = [rng.uniform(0, 60), rng.uniform(90, 160), rng.uniform(0, 60)];
    for (let y = Math.floor(y0 - r); y <= Math.ceil(y0 + r); y++)
      for (let x = Math.floor(x0 - r); x <= Math.ceil(x0 + r); x++) if (Math.hypot(x - x0, y - y0) <= r) set(x, y, color);
  } else if (kind === 'crack') {
    let x = cx + rng.uniform(-reach, reach);
    let y = cy + rng.uniform(-reach, reach);
    let a = rng.uniform(0, 2 * Math.PI);
    const color = [15, 15, 15];
    for (let s = 0; s < size * 0.6; s++) {
      set(x, y, color);
      a += rng.uniform(-0.5, 0.5);
      x += Math.cos(a);
      y += Math.sin(a);
    }
  } else {
    // missing part: a bite out of the disc's rim, painted with the background
    const d = disc!;
    const a = rng.uniform(0, 2 * Math.PI);
    const bx = d.cx + d.r * Math.cos(a);
    const by = d.cy + d.r * Math.sin(a);
    const br = d.r * rng.uniform(0.35, 0.5);
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++) {
        const inDisc = Math.hypot(x + 0.5 - d.cx, y + 0.5 - d.cy) < d.r;
        if (inDisc && Math.hypot(x + 0.5 - bx, y + 0.5 - by) < br) set(x, y, [40, 40, 40]);
      }
  }
  return mask;
}

function writeRgb(path: string, c: Canvas): void {
  const data = new Uint8Array(c.rgb.length);
  for (let i = 0; i < data.length; i++) data[i] = Math.max(0, Math.min(255, Math.round(c.rgb[i])));
  writeFileSync(path, encode({ width: c.size, height: c.size, data, channels: 3, depth: 8 }));
}

function writeMask(path: string, size: number, mask: Uint8Array): void {
  writeFileSync(path, encode({ width: size, height: size, data: mask, channels: 1, depth: 8 }));
}

/** Writes the dataset under `root` and returns the category names. */
export function generateSyntheticDataset(root: string, opts: SyntheticOptions = {}): string[] {
  const size = opts.size ?? 64;
  const categories = opts.categories ?? { synth_weave: 'texture', synth_disc: 'object' };
  const rng = new Rng(opts.seed ?? 0);
  const names = Object.keys(categories);
  names.forEach((name, ci) => {
    const kind = categories[name];
    const tint = [1, 0.85 + 0.1 * ci, 0.7 + 0.2 * ((ci + 1) % 2)];
    const make = () => (kind === 'texture' ? { canvas: texture(size, rng, tint), disc: null } : object(size, rng, tint));
    const dir = join(root, name);
    const good = join(dir, 'train', 'good');
    mkdirSync(good, { recursive: true });
    for (let i = 0; i < (opts.train ?? 24); i++) writeRgb(join(good, `${String(i).padStart(3, '0')}.png`), make().canvas);
    const testGood = join(dir, 'test', 'good');
    mkdirSync(testGood, { recursive: true });
    for (let i = 0; i < (opts.testGood ?? 6); i++) writeRgb(join(testGood, `${String(i).padStart(3, '0')}.png`), make().canvas);
    for (const defect of DEFECTS[kind]) {
      const tdir = join(dir, 'test', defect);
      const gdir = join(dir, 'ground_truth', defect);
      mkdirSync(tdir, { recursive: true });
      mkdirSync(gdir, { recursive: true });
      for (let i = 0; i < (opts.testPerDefect ?? 4); i++) {
        const { canvas, disc } = make();
        const mask = paintDefect(canvas, defect, rng, disc);
        const n = String(i).padStart(3, '0');
        writeRgb(join(tdir, `${n}.png`), canvas);
        writeMask(join(gdir, `${n}_mask.png`), size, mask);
      }
    }
  });
  return names;
}
