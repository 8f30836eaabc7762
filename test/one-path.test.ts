/**
 * One inference path: the same images of a run evaluated with `--sigma 4` through `dcam eval`, `dcam infer`,
 * `dcam serve`, `loadDetector().inspect()` and the browser demo's session give the same maps, scores and
 * labels (the maps smoothed by the run's sigma everywhere); and a run whose published student.safetensors
 * is not its committed checkpoint's is refused, naming the file, by every one of them.
 */
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DemoSession } from '../demo/src/session.js';
import { generateSyntheticDataset } from '../src/data/synthetic.js';
import { createDevice } from '../src/graph/device.js';
import type { Runtime } from '../src/graph/runtime.js';
import { loadDetector } from '../src/node.js';
import { InspectionServer, SERVE_DEFAULTS } from '../src/serve/server.js';
import { findTeacher } from '../src/train/teacher.js';
import { dcam } from './cli-helpers.js';
import { useRuntime } from './helpers.js';

const ctx = useRuntime();
const tmp = mkdtempSync(join(tmpdir(), 'dcam-one-path-'));
const data = join(tmp, 'data');
const run = join(tmp, 'parts');
const testDir = join(data, 'synth_disc', 'test');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The test images, in a fixed order. */
const images = () => readdirSync(testDir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.png')).sort().map((f) => join(testDir, f));

interface Seen {
  score: number;
  label: string | null;
  map?: Float32Array;
}

beforeAll(async () => {
  generateSyntheticDataset(data, { seed: 7, size: 32, train: 8, testGood: 3, testPerDefect: 2, categories: { synth_disc: 'object' } });
  expect((await dcam('train', '--data', data, '--out', run, '--size', '32', '--steps', '4', '--batch', '4')).code).toBe(0);
  const ev = await dcam('eval', '--run', run, '--sigma', '4');
  expect(ev.code, ev.err).toBe(0);
}, 180_000);

/** A demo session holding the run: as the page makes it, on a device of its own (created here, not from navigator.gpu). */
async function demoSession(files: Map<string, Uint8Array>): Promise<DemoSession> {
  const session = new (DemoSession as unknown as new (rt: Runtime) => DemoSession)(await createDevice());
  try {
    await session.loadTeacher(readFileSync(findTeacher()), 'teacher');
    await session.loadRun(files);
    return session;
  } catch (e) {
    session.destroy();
    throw e;
  }
}

const runFiles = (dir: string) => new Map(['config.json', 'student.safetensors', 'checkpoint.json'].map((f) => [f, new Uint8Array(readFileSync(join(dir, f)))]));

async function serveAll(dir: string, paths: string[]): Promise<Seen[]> {
  const detector = await loadDetector({ run: dir, runtime: ctx.rt });
  const server = new InspectionServer(ctx.rt, [{ name: 'parts', dir, detector }], { ...SERVE_DEFAULTS, port: 0 });
  const url = await server.listen();
  try {
    const out: Seen[] = [];
    for (const p of paths) {
      const r = (await (await fetch(`${url}/v1/inspect?map=raw`, { method: 'POST', body: new Uint8Array(readFileSync(p)), headers: { 'content-type': 'image/png' } })).json()) as { score: number; label: string; map: { data: string } };
      out.push({ score: r.score, label: r.label, map: new Float32Array(new Uint8Array(Buffer.from(r.map.data, 'base64')).buffer) });
    }
    return out;
  } finally {
    await server.close();
  }
}

describe('one inference path', () => {
  it('eval, infer, serve, the package and the demo give the same maps, scores and labels for a run evaluated with --sigma 4', async () => {
    const config = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8'));
    expect(config.thresholds.sigma).toBe(4);
    const paths = images();
    expect(paths.length).toBeGreaterThan(6);
    const threshold = config.thresholds.image as number;
    const labelOf = (score: number) => (score >= threshold ? 'defect' : 'ok');

    const metrics = JSON.parse(readFileSync(join(run, 'metrics.json'), 'utf8')) as { images: Array<{ path: string; score: number }> };
    const evaluated: Seen[] = paths.map((p) => {
      const m = metrics.images.find((i) => i.path === p)!;
      return { score: m.score, label: labelOf(m.score) };
    });

    const out = join(tmp, 'inferred');
    expect((await dcam('infer', '--run', run, '--raw', '--out', out, testDir)).code).toBe(0);
    const scores = JSON.parse(readFileSync(join(out, 'scores.json'), 'utf8')) as Array<{ image: string; score: number; label: string; overlay: string }>;
    const inferred: Seen[] = paths.map((p) => {
      const s = scores.find((r) => r.image === p)!;
      const npy = readFileSync(join(out, s.overlay.replace(/\.png$/, '.npy')));
      return { score: s.score, label: s.label, map: new Float32Array(npy.buffer.slice(npy.byteOffset + npy.length - 32 * 32 * 4, npy.byteOffset + npy.length)) };
    });

    const served = await serveAll(run, paths);

    const det = await loadDetector({ run, runtime: ctx.rt });
    const packaged: Seen[] = (await det.inspect(paths.map((p) => readFileSync(p)))).map((r) => ({ score: r.score, label: r.label, map: r.map }));
    det.dispose();

    const session = await demoSession(runFiles(run));
    const demo: Seen[] = [];
    for (const p of paths) {
      const r = await session.inspect(new Uint8Array(readFileSync(p)), p);
      demo.push({ score: r.score, label: r.label, map: r.map });
    }
    session.destroy();

    const ways: Array<[string, Seen[]]> = [['dcam infer', inferred], ['dcam serve', served], ['loadDetector().inspect()', packaged], ['the demo', demo]];
    paths.forEach((p, i) => {
      for (const [way, seen] of ways) {
        // maps and scores equal up to float rounding (the GPU batch differs: eval and infer 8, serve and the demo 1)
        expect(Math.abs(seen[i].score - evaluated[i].score) / Math.abs(evaluated[i].score), `${way}: ${p} score`).toBeLessThan(1e-5);
        expect(seen[i].label, `${way}: ${p} label`).toBe(evaluated[i].label);
        if (way !== 'dcam infer') {
          const ref = inferred[i].map!;
          let worst = 0;
          for (let k = 0; k < ref.length; k++) worst = Math.max(worst, Math.abs(seen[i].map![k] - ref[k]));
          expect(worst / Math.max(...ref), `${way}: ${p} map`).toBeLessThan(1e-5);
        }
      }
    });
    // the smoothing is applied: the served map is not the raw one
    const raw = await loadDetector({ run, runtime: ctx.rt });
    const unsmoothed = (await raw.inspect(readFileSync(paths[0]), { sigma: 0 })).map;
    raw.dispose();
    expect(Math.max(...unsmoothed)).toBeGreaterThan(Math.max(...served[0].map!) * 1.0001);
    expect(new Set([...evaluated, ...inferred].map((s) => s.label)).size, 'both labels occur').toBe(2);
  }, 180_000);

  it('a run whose published student.safetensors is not its checkpoint\'s is refused by eval, infer, serve, the package and the demo, naming the file', async () => {
    const tampered = join(tmp, 'tampered');
    cpSync(run, tampered, { recursive: true });
    const student = readFileSync(join(tampered, 'student.safetensors'));
    student[student.length - 5] ^= 0x40; // one weight changed
    writeFileSync(join(tampered, 'student.safetensors'), student);
    const named = /student\.safetensors is not the student of the run's last committed checkpoint|student\.safetensors is not the student the run's last checkpoint committed/;

    const ev = await dcam('eval', '--run', tampered);
    expect(ev.code).toBe(1);
    expect(ev.err).toMatch(named);
    const inf = await dcam('infer', '--run', tampered, '--out', join(tmp, 'inf-tampered'), images()[0]);
    expect(inf.code).toBe(1);
    expect(inf.err).toMatch(named);
    const cal = await dcam('calibrate', '--run', tampered, '--good', images()[0]);
    expect(cal.code).toBe(1);
    expect(cal.err).toMatch(named);
    await expect(loadDetector({ run: tampered, runtime: ctx.rt })).rejects.toThrow(named); // the package and dcam serve
    await expect(demoSession(runFiles(tampered))).rejects.toThrow(named);
  });
});
