/**
 * Large images by tiles: the grid (every pixel covered, the last tile flush with the edge), the stitch
 * (overlaps averaged) against a plain reference, a tiled run end to end on non-square images whose sides
 * are not multiples of the stride (train, eval, infer, serve, the package: maps at the image's own size,
 * the run's tiling applied without being told, a different one refused by name), and the tiled map equal
 * to the untiled network's maps of the same crops stitched by hand.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decode, encode } from 'fast-png';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSyntheticDataset } from '../src/data/synthetic.js';
import { checkTiling, cutTiles, describeTiling, makeTiling, MAX_TILES_PER_IMAGE, stitch, tileGrid, TilingError, tileOrigins, type Tiling } from '../src/data/tiles.js';
import { Detector, DetectorError } from '../src/detector.js';
import { FewShotTrainer } from '../src/fewshot.js';
import { loadDetector } from '../src/node.js';
import { InspectionServer, SERVE_DEFAULTS } from '../src/serve/server.js';
import { dcam } from './cli-helpers.js';
import { useRuntime } from './helpers.js';

const ctx = useRuntime();
const tmp = mkdtempSync(join(tmpdir(), 'dcam-tiles-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// 90 x 50 images, tiles of 32 every 24 px: columns at 0, 24, 48, 58 and rows at 0, 18 (neither side a multiple of the stride)
const [W, H] = [90, 50];
const TILING: Tiling = { tile: 32, stride: 24, scale: 1 };

describe('tile grid and stitch', () => {
  it('covers every pixel, the last tile flush with the edge', () => {
    expect(tileOrigins(90, 32, 24)).toEqual([0, 24, 48, 58]);
    expect(tileOrigins(50, 32, 24)).toEqual([0, 18]);
    expect(tileOrigins(32, 32, 16)).toEqual([0]);
    expect(tileOrigins(64, 32, 32)).toEqual([0, 32]);
    for (const [len, tile, stride] of [[97, 32, 7], [33, 32, 1], [200, 48, 48], [129, 64, 40]]) {
      const o = tileOrigins(len, tile, stride);
      const covered = new Uint8Array(len);
      for (const x of o) covered.fill(1, x, x + tile);
      expect(covered.every((c) => c === 1), `${len}/${tile}/${stride}`).toBe(true);
      expect(o.at(-1)! + tile).toBe(len);
      expect(Math.max(...o.slice(1).map((x, i) => x - o[i]))).toBeLessThanOrEqual(stride);
    }
    expect(tileGrid(W, H, TILING)).toHaveLength(8);
    // after a downscale: 180 x 100 at 0.5 is the same grid
    expect(tileGrid(180, 100, { ...TILING, scale: 0.5 })).toEqual(tileGrid(W, H, TILING));
  });

  it('refuses an image smaller than a tile and a grid of too many tiles', () => {
    expect(() => tileGrid(31, 100, TILING, 'a.png')).toThrow(/a\.png: 31x100 is smaller than a tile of 32/);
    expect(() => tileGrid(64, 64, { tile: 32, stride: 16, scale: 0.25 }, 'b.png')).toThrow(/16x16 \(scaled by 0.25\) is smaller/);
    const side = 32 + 65 * 1; // 66 x 66 = 4356 tiles at stride 1
    expect(66 * 66).toBeGreaterThan(MAX_TILES_PER_IMAGE);
    expect(() => tileGrid(side, side, { tile: 32, stride: 1, scale: 1 }, 'c.png')).toThrow(/c\.png: 97x97 makes 4356 tiles of 32 every 1 px, more than 4096/);
    // each refusal is the package's error, with its reason (the service's status follows the reason, not the wording)
    const reason = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(DetectorError);
        return (e as TilingError).reason;
      }
      throw new Error('not refused');
    };
    expect(reason(() => tileGrid(31, 100, TILING))).toBe('too-small');
    expect(reason(() => tileGrid(side, side, { tile: 32, stride: 1, scale: 1 }))).toBe('too-many');
    expect(reason(() => makeTiling(32, 33))).toBe('settings');
    expect(reason(() => makeTiling(32, 16, 1.5))).toBe('settings');
    expect(reason(() => checkTiling({ tile: 48 }, TILING))).toBe('settings');
  });

  it('stitches maps with overlaps averaged (against a per-pixel reference in float64)', () => {
    const origins = tileGrid(W, H, TILING);
    const S = TILING.tile;
    let seed = 3;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const maps = origins.map(() => Float32Array.from({ length: S * S }, rand));
    const got = stitch(maps, origins, S, W, H);
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        let sum = 0;
        let n = 0;
        origins.forEach(([x0, y0], k) => {
          if (x >= x0 && x < x0 + S && y >= y0 && y < y0 + S) {
            sum += maps[k][(y - y0) * S + (x - x0)];
            n++;
          }
        });
        expect(n).toBeGreaterThan(0);
        expect(Math.abs(got[y * W + x] - sum / n)).toBeLessThan(1e-6);
      }
    }
  });

  it('cuts tiles that are crops of the normalised image', () => {
    const data = Uint8Array.from({ length: W * H * 3 }, (_, i) => (i * 37) % 251);
    const cut = cutTiles({ width: W, height: H, data }, TILING);
    expect([cut.width, cut.height]).toEqual([W, H]);
    expect(cut.tiles).toHaveLength(8);
    const S = TILING.tile;
    cut.origins.forEach(([x0, y0], k) => {
      for (const [c, y, x] of [[0, 0, 0], [1, 5, 31], [2, 31, 17]]) {
        expect(cut.tiles[k][(c * S + y) * S + x]).toBe(cut.image[c * W * H + (y0 + y) * W + x0 + x]);
      }
    });
  });

  it('checks given settings against the run, by name', () => {
    expect(() => checkTiling({}, TILING)).not.toThrow();
    expect(() => checkTiling({ tile: 32, stride: 24 }, TILING)).not.toThrow();
    expect(() => checkTiling({ tile: 64 }, TILING, 'runs/x')).toThrow(/--tile 64: runs\/x was trained with tiles of 32 every 24 px \(native resolution\)/);
    expect(() => checkTiling({ tile: 32 }, undefined, 'runs/y')).toThrow(/--tile 32: runs\/y was trained with no tiles/);
    expect(describeTiling({ tile: 64, stride: 32, scale: 0.5 })).toBe('tiles of 64 every 32 px (scaled by 0.5)');
  });
});

/** A copy of a synthetic MVTec-layout category cropped to W x H (images and masks), in plain folders. */
function croppedFolders(): { train: string; good: string; defect: string; masks: string } {
  const src = join(tmp, 'synth');
  generateSyntheticDataset(src, { seed: 5, size: 96, train: 6, testGood: 2, testPerDefect: 2, categories: { synth_disc: 'object' } });
  const cat = join(src, 'synth_disc');
  const dirs = { train: join(tmp, 'parts', 'ok'), good: join(tmp, 'parts', 'good'), defect: join(tmp, 'parts', 'ng'), masks: join(tmp, 'parts', 'masks') };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  const crop = (from: string, to: string) => {
    const img = decode(readFileSync(from));
    const ch = img.channels;
    const data = new Uint8Array(W * H * ch);
    for (let y = 0; y < H; y++) data.set(img.data.subarray(((y + 3) * img.width + 2) * ch, ((y + 3) * img.width + 2 + W) * ch) as Uint8Array, y * W * ch);
    writeFileSync(to, encode({ width: W, height: H, data, channels: ch, depth: 8 }));
  };
  for (const f of readdirSync(join(cat, 'train', 'good'))) crop(join(cat, 'train', 'good', f), join(dirs.train, f));
  for (const f of readdirSync(join(cat, 'test', 'good'))) crop(join(cat, 'test', 'good', f), join(dirs.good, f));
  for (const defect of readdirSync(join(cat, 'test')).filter((d) => d !== 'good')) {
    for (const f of readdirSync(join(cat, 'test', defect))) {
      crop(join(cat, 'test', defect, f), join(dirs.defect, `${defect}_${f}`));
      crop(join(cat, 'ground_truth', defect, f.replace('.png', '_mask.png')), join(dirs.masks, `${defect}_${f}`));
    }
  }
  return dirs;
}

describe('a tiled run', () => {
  let dirs: ReturnType<typeof croppedFolders>;
  const run = join(tmp, 'run-tiled');
  beforeAll(async () => {
    dirs = croppedFolders();
    const r = await dcam('train', '--good', dirs.train, '--out', run, '--tile', '32', '--stride', '24', '--steps', '3', '--batch', '8');
    expect(r.code, r.err).toBe(0);
  }, 180_000);

  it('records its tiling and trains on tiles (8 per image)', () => {
    const config = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8'));
    expect(config.tiling).toEqual(TILING);
    expect(config.size).toBe(32);
    // a resume with another tiling is refused by name
    return dcam('train', '--good', dirs.train, '--out', run, '--resume', '--tile', '48', '--steps', '4').then((r) => {
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/--tile/);
    });
  });

  it('eval, infer and serve give maps at the image\'s own size; a different tiling is refused by name', async () => {
    let r = await dcam('eval', '--run', run, '--good', dirs.good, '--defect', dirs.defect, '--masks', dirs.masks, '--out', join(tmp, 'eval'));
    expect(r.code, r.err).toBe(0);
    const m = JSON.parse(readFileSync(join(tmp, 'eval', 'metrics.json'), 'utf8')).categories[0];
    expect(Number.isFinite(m.pixelAUROC)).toBe(true);
    expect(Number.isFinite(m.auPRO)).toBe(true);

    const out = join(tmp, 'inferred');
    r = await dcam('infer', '--run', run, '--raw', '--out', out, dirs.defect);
    expect(r.code, r.err).toBe(0);
    const scores = JSON.parse(readFileSync(join(out, 'scores.json'), 'utf8')) as Array<{ image: string; score: number; overlay: string; mask: string }>;
    expect(scores.length).toBe(readdirSync(dirs.defect).length);
    const overlay = decode(readFileSync(join(out, scores[0].overlay)));
    expect([overlay.width, overlay.height]).toEqual([W, H]);
    const mask = decode(readFileSync(join(out, scores[0].mask)));
    expect([mask.width, mask.height]).toEqual([W, H]);
    const npy = readFileSync(join(out, scores[0].overlay.replace(/\.png$/, '.npy')));
    expect(npy.toString('latin1', 0, 128)).toMatch(/'shape': \(50, 90\)/);

    for (const cmd of [['infer', '--run', run, '--out', join(tmp, 'x'), '--tile', '48', dirs.defect], ['eval', '--run', run, '--good', dirs.good, '--defect', dirs.defect, '--stride', '16'], ['calibrate', '--run', run, '--good', dirs.good, '--tile', '64']]) {
      r = await dcam(...cmd);
      expect(r.code, cmd.join(' ')).toBe(1);
      expect(r.err).toMatch(/(--tile 48|--stride 16|--tile 64): .*run-tiled was trained with tiles of 32 every 24 px/);
    }
    r = await dcam('infer', '--run', run, '--out', join(tmp, 'y'), '--tile', '32', dirs.defect);
    expect(r.code, 'the same tiling, given, is accepted').toBe(0);
    // the ONNX export says how to cut the tiles
    r = await dcam('export', '--run', run, '--out', join(tmp, 'tiled.onnx'));
    expect(r.code, r.err).toBe(0);
    const onnx = readFileSync(join(tmp, 'tiled.onnx')).toString('latin1');
    expect(onnx).toContain('dcam.tiling');
    expect(onnx).toContain(JSON.stringify(TILING));

    const detector = await loadDetector({ run, runtime: ctx.rt });
    const server = new InspectionServer(ctx.rt, [{ name: 'tiled', dir: run, detector }], { ...SERVE_DEFAULTS, port: 0 });
    const url = await server.listen();
    try {
      const body = new Uint8Array(readFileSync(scores[0].image));
      const res = (await (await fetch(`${url}/v1/inspect?map=raw`, { method: 'POST', body, headers: { 'content-type': 'image/png' } })).json()) as { score: number; map: { width: number; height: number; data: string } };
      expect([res.map.width, res.map.height]).toEqual([W, H]);
      expect(Math.abs(res.score - scores[0].score) / scores[0].score).toBeLessThan(1e-5);
      const runs = (await (await fetch(`${url}/v1/runs`)).json()) as { runs: Array<{ tiling: Tiling }> };
      expect(runs.runs[0].tiling).toEqual(TILING);
      // an image smaller than a tile is refused before decoding, not a 500
      const small = new Uint8Array(encode({ width: 20, height: 60, data: new Uint8Array(20 * 60 * 3), channels: 3, depth: 8 }));
      const bad = await fetch(`${url}/v1/inspect`, { method: 'POST', body: small, headers: { 'content-type': 'image/png' } });
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { error: string }).error).toMatch(/20x60 is smaller than a tile of 32/);
    } finally {
      await server.close();
    }
  }, 180_000);

  it('the package\'s trainer trains on tiles too: its detector stitches at the image\'s size, its run files record the tiling', async () => {
    const images = readdirSync(dirs.train).slice(0, 3).map((f) => new Uint8Array(readFileSync(join(dirs.train, f))));
    const trainer = await FewShotTrainer.create({ images, tiling: { tile: 32, stride: 24 }, epochs: 1, batch: 8, runtime: ctx.rt });
    try {
      expect(trainer.tiling).toEqual(TILING);
      expect(trainer.totalSteps).toBe(3); // 3 images x 8 tiles, batches of 8
      await trainer.run();
      const config = JSON.parse(new TextDecoder().decode((await trainer.runFiles()).get('config.json')));
      expect(config.tiling).toEqual(TILING);
      expect(config.trainImages).toBe(3);
      const det = await trainer.detector();
      const r = await det.inspect(images[0]);
      expect([r.width, r.height, r.map.length]).toEqual([W, H, W * H]);
      det.dispose();
    } finally {
      trainer.dispose();
    }
    await expect(FewShotTrainer.create({ images, tiling: { tile: 32 }, size: 64, runtime: ctx.rt })).rejects.toThrow(/tiles of 32 with size 64/);
    // a bad stride or an image too small for a tile: the package's error, before anything is trained
    await expect(FewShotTrainer.create({ images, tiling: { tile: 32, stride: 40 }, runtime: ctx.rt })).rejects.toThrow(DetectorError);
    const tiny = { width: 20, height: 20, data: new Uint8Array(20 * 20 * 3) };
    await expect(FewShotTrainer.create({ images: [tiny], tiling: { tile: 32 }, runtime: ctx.rt })).rejects.toThrow(DetectorError);
  }, 120_000);

  it('the package applies the run\'s tiling, refuses another, and its map is the untiled maps of the same crops stitched', async () => {
    await expect(loadDetector({ run, runtime: ctx.rt, tiling: { stride: 16 } })).rejects.toThrow(DetectorError);
    await expect(loadDetector({ run, runtime: ctx.rt, tiling: { stride: 16 } })).rejects.toThrow(/--stride 16: .* was trained with tiles of 32 every 24 px/);
    const det = await loadDetector({ run, runtime: ctx.rt, tiling: { tile: 32 } });
    try {
      expect(det.tiling).toEqual(TILING);
      const file = join(dirs.defect, readdirSync(dirs.defect)[0]);
      const img = decode(readFileSync(file));
      const tiled = await det.inspect(readFileSync(file), { sigma: 0 });
      expect([tiled.width, tiled.height]).toEqual([W, H]);
      expect(tiled.map).toHaveLength(W * H);
      // the same network, untiled, on each 32 x 32 crop (no resize at the network's own size)
      const plain = await Detector.fromModel(ctx.rt, (det as unknown as { model: Parameters<typeof Detector.fromModel>[1] }).model, 32, null, { runtime: false, teacher: false });
      const origins = tileGrid(W, H, TILING);
      const crops = origins.map(([x0, y0]) => {
        const data = new Uint8Array(32 * 32 * 3);
        for (let y = 0; y < 32; y++) data.set(img.data.subarray(((y0 + y) * W + x0) * 3, ((y0 + y) * W + x0 + 32) * 3) as Uint8Array, y * 32 * 3);
        return { width: 32, height: 32, data };
      });
      const maps = (await plain.inspect(crops, { sigma: 0 })).map((r) => r.map);
      const ref = stitch(maps, origins, 32, W, H);
      let worst = 0;
      for (let p = 0; p < ref.length; p++) worst = Math.max(worst, Math.abs(ref[p] - tiled.map[p]));
      expect(worst / Math.max(...ref)).toBeLessThan(1e-5);
      expect(tiled.score).toBeCloseTo(Math.max(...ref), 5);
    } finally {
      det.dispose();
    }
  }, 120_000);
});
