/**
 * A fuzzing probe of the image decoders against PIL (never in CI; needs Debian's python3-pil): the
 * structured hostile corpus of test/hostile-images.ts plus random mutations (bytes flipped, the file cut
 * short, a span zeroed or duplicated) of valid PNG, JPEG, BMP and TIFF files. Each file is decoded by our
 * decoders in the decode pool of `dcam serve` (deadline 5 s) and by PIL (`Image.open(f).convert('RGB')`);
 * the report counts the outcomes: both refuse; PIL refuses and we decode (each must be a file valid by its
 * format's specification); we refuse and PIL decodes (stricter, by reason); both decode, with the same
 * pixels or not.
 *
 *   npx tsx bench/image-probe.ts [--mutations 100] [--seed 1] [--out bench/reports/DATE-image-probe]
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Rng } from '../src/nn/init.js';
import { DecodePool, DecodeRefusedError } from '../src/serve/decode-pool.js';
import { bmp, hostileBmps, hostileJpegs, hostilePngs, hostileTiffs, validPng, validTiff, type HostileFile } from '../test/hostile-images.js';

const { values: a } = parseArgs({ options: { mutations: { type: 'string', default: '100' }, seed: { type: 'string', default: '1' }, out: { type: 'string' } } });
const perSeed = Number(a.mutations);
const rng = new Rng(Number(a.seed));
const fixtures = new URL('../test/fixtures/codecs/', import.meta.url);
const codec = (name: string) => new Uint8Array(readFileSync(new URL(name, fixtures)));

/** Valid files to mutate, by format. */
const seeds: Record<string, Array<[string, Uint8Array]>> = {
  PNG: [['png-rgb', validPng(48, 40)], ['png-palette', new Uint8Array(readFileSync(new URL('../test/fixtures/images/palette.png', import.meta.url)))], ['png-gray16', new Uint8Array(readFileSync(new URL('../test/fixtures/images/gray16.png', import.meta.url)))]],
  JPEG: [['jpeg-baseline', codec('baseline-420.jpg')], ['jpeg-progressive', codec('progressive-420.jpg')], ['jpeg-gray', codec('grayscale.jpg')]],
  BMP: [['bmp-rgb24', codec('rgb24.bmp')], ['bmp-palette8', codec('palette8.bmp')], ['bmp-synthetic', bmp()]],
  TIFF: [['tiff-rgb', codec('rgb.tif')], ['tiff-lzw', codec('rgb-lzw.tif')], ['tiff-deflate', codec('rgb-deflate.tif')], ['tiff-gray', validTiff()]],
};

/** One random mutation of a file: flip bytes, cut it, zero a span, or duplicate a span. */
function mutate(bytes: Uint8Array): { bytes: Uint8Array; how: string } {
  const r = rng.uniform(0, 1);
  const at = () => Math.floor(rng.uniform(0, 1) * bytes.length);
  if (r < 0.4) {
    const out = bytes.slice();
    const n = 1 + Math.floor(rng.uniform(0, 1) * 8);
    for (let i = 0; i < n; i++) out[at()] ^= 1 + Math.floor(rng.uniform(0, 1) * 255);
    return { bytes: out, how: `${n} byte(s) changed` };
  }
  if (r < 0.65) {
    const n = Math.max(8, at());
    return { bytes: bytes.slice(0, n), how: `cut to ${n} of ${bytes.length} bytes` };
  }
  if (r < 0.85) {
    const out = bytes.slice();
    const s = at();
    const n = Math.min(out.length - s, 1 + Math.floor(rng.uniform(0, 1) * 64));
    out.fill(0, s, s + n);
    return { bytes: out, how: `${n} bytes zeroed at ${s}` };
  }
  const s = at();
  const n = Math.min(bytes.length - s, 1 + Math.floor(rng.uniform(0, 1) * 256));
  const out = new Uint8Array(bytes.length + n);
  out.set(bytes.subarray(0, s + n));
  out.set(bytes.subarray(s, s + n), s + n);
  out.set(bytes.subarray(s + n), s + 2 * n);
  return { bytes: out, how: `${n} bytes duplicated at ${s}` };
}

interface Probe {
  name: string;
  format: string;
  kind: 'structured' | 'mutation';
  why: string;
  bytes: Uint8Array;
}
const jpegSeed = codec('baseline-420.jpg');
const structured: Array<[string, HostileFile[]]> = [['PNG', hostilePngs(64 << 20)], ['JPEG', hostileJpegs(jpegSeed)], ['BMP', hostileBmps()], ['TIFF', hostileTiffs(64 << 20)]];
const probes: Probe[] = structured.flatMap(([format, files]) => files.map((f) => ({ name: f.name, format, kind: 'structured' as const, why: f.why, bytes: f.bytes })));
for (const [format, list] of Object.entries(seeds)) {
  for (let k = 0; k < perSeed; k++) {
    const [seedName, bytes] = list[k % list.length];
    const m = mutate(bytes);
    const ext = { PNG: 'png', JPEG: 'jpg', BMP: 'bmp', TIFF: 'tif' }[format]!;
    probes.push({ name: `${seedName}-m${k}.${ext}`, format, kind: 'mutation', why: m.how, bytes: m.bytes });
  }
}

// ---- our decoders (in the service's decode pool) ----
type Verdict = { ok: true; sha: string; size: string } | { ok: false; reason: string };
const pool = new DecodePool({ workers: 2, timeoutMs: 5000, heapMb: 256 });
await pool.ready();
const ours: Verdict[] = [];
const t0 = performance.now();
for (const p of probes) {
  try {
    const img = await pool.decode(p.bytes, 50_000_000);
    ours.push({ ok: true, sha: createHash('sha256').update(img.data).digest('hex'), size: `${img.width}x${img.height}` });
  } catch (e) {
    ours.push({ ok: false, reason: e instanceof DecodeRefusedError ? e.message : `CRASH ${(e as Error).message}` });
  }
}
const ourSeconds = (performance.now() - t0) / 1000;
await pool.close();

// ---- PIL ----
const dir = mkdtempSync(join(tmpdir(), 'dcam-image-probe-'));
probes.forEach((p, i) => writeFileSync(join(dir, `${String(i).padStart(5, '0')}`), p.bytes));
const script = `
import hashlib, json, os, sys, warnings
from PIL import Image
import PIL
warnings.simplefilter('ignore')
out = {}
for f in sorted(os.listdir(sys.argv[1])):
    try:
        with Image.open(os.path.join(sys.argv[1], f)) as im:
            rgb = im.convert('RGB')
            out[f] = {'ok': True, 'sha': hashlib.sha256(rgb.tobytes()).hexdigest(), 'size': f'{rgb.width}x{rgb.height}'}
    except Exception as e:
        out[f] = {'ok': False, 'reason': f'{type(e).__name__}: {e}'}
print(json.dumps({'version': PIL.__version__, 'results': out}))
`;
const pil = JSON.parse(execFileSync('/usr/bin/python3', ['-c', script, dir], { encoding: 'utf8', maxBuffer: 64 << 20 })) as { version: string; results: Record<string, Verdict> };
rmSync(dir, { recursive: true, force: true });
const theirs = probes.map((_, i) => pil.results[String(i).padStart(5, '0')]);

// ---- tally ----
interface Row { name: string; format: string; kind: string; why: string; ours: Verdict; pil: Verdict; outcome: string }
const rows: Row[] = probes.map((p, i) => {
  const [o, t] = [ours[i], theirs[i]];
  const outcome = !o.ok && !t.ok ? 'both refuse' : o.ok && !t.ok ? 'PIL refuses, we decode' : !o.ok && t.ok ? 'we refuse, PIL decodes' : o.ok && t.ok && o.sha === t.sha ? 'both decode, same pixels' : 'both decode, pixels differ';
  return { name: p.name, format: p.format, kind: p.kind, why: p.why, ours: o, pil: t, outcome };
});
const outcomes = ['both refuse', 'we refuse, PIL decodes', 'PIL refuses, we decode', 'both decode, same pixels', 'both decode, pixels differ'];
const count = (f: (r: Row) => boolean) => rows.filter(f).length;
const lines = [
  '# Image decoder probe against PIL',
  '',
  `${probes.length} files: the ${probes.filter((p) => p.kind === 'structured').length} structured hostile files of test/hostile-images.ts (inflation bombs of 64 MiB) and ${perSeed} random mutations per format (bytes changed, cut short, a span zeroed or duplicated) of valid files (seed ${a.seed}).`,
  `Ours: the decoders in \`dcam serve\`'s decode pool (deadline 5 s, heap 256 MiB), ${ourSeconds.toFixed(1)} s for all. PIL ${pil.version} (Debian python3-pil): \`Image.open(f).convert('RGB')\`.`,
  `Command: \`npx tsx bench/image-probe.ts ${process.argv.slice(2).join(' ')}\`.`,
  '',
  `| format | files | ${outcomes.join(' | ')} | deadline or crash |`,
  `|---|---:|${outcomes.map(() => '---:').join('|')}|---:|`,
];
for (const format of [...Object.keys(seeds), 'all']) {
  const mine = (r: Row) => format === 'all' || r.format === format;
  lines.push(`| ${format} | ${count(mine)} | ${outcomes.map((o) => count((r) => mine(r) && r.outcome === o)).join(' | ')} | ${count((r) => mine(r) && !r.ours.ok && /not decoded within|CRASH/.test(r.ours.reason))} |`);
}
const section = (title: string, which: (r: Row) => boolean, describe: (r: Row) => string) => {
  const list = rows.filter(which);
  lines.push('', `## ${title} (${list.length})`, '');
  if (!list.length) lines.push('None.');
  for (const r of list.slice(0, 60)) lines.push(`- \`${r.name}\` (${r.why}): ${describe(r)}`);
  if (list.length > 60) lines.push(`- ... and ${list.length - 60} more (the JSON lists all)`);
};
section('PIL refuses, we decode', (r) => r.outcome === 'PIL refuses, we decode', (r) => `PIL: ${(r.pil as { reason: string }).reason}`);
section('We refuse, PIL decodes', (r) => r.outcome === 'we refuse, PIL decodes', (r) => `ours: ${(r.ours as { reason: string }).reason}`);
section('Both decode, pixels differ', (r) => r.outcome === 'both decode, pixels differ', (r) => `ours ${(r.ours as { size: string }).size}, PIL ${(r.pil as { size: string }).size}`);
const verdict = (v: Verdict) => (v.ok ? `decoded ${v.size}` : v.reason);
section('The structured hostile files', (r) => r.kind === 'structured', (r) => `ours: ${verdict(r.ours)} / PIL: ${verdict(r.pil)}`);
const report = lines.join('\n') + '\n';
console.log(report);
if (a.out) {
  writeFileSync(`${a.out}.md`, report);
  writeFileSync(`${a.out}.json`, JSON.stringify({ pil: pil.version, seed: Number(a.seed), mutationsPerFormat: perSeed, ourSeconds, rows: rows.map(({ ours: o, pil: t, ...r }) => ({ ...r, ours: o, pil: t })) }, null, 2));
  console.log(`wrote ${a.out}.md and .json`);
}
