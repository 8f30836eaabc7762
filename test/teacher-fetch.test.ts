/**
 * `dcam teacher fetch` against a local HTTP server (these machines reach no model hub): verified by sha256
 * and cached atomically, then found offline; a corrupted, an interrupted and a wrongly named file are
 * refused and leave nothing in the cache; torch.hub's cache is reused.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dcam } from './cli-helpers.js';
import { fetchTeacher, TEACHER_SOURCES } from '../src/train/teacher.js';

const tmp = mkdtempSync(join(tmpdir(), 'dcam-fetch-'));
const body = new Uint8Array(300_000).map((_, i) => (i * 31 + (i >> 8)) & 0xff);
const hash = createHash('sha256').update(body).digest('hex');
let server: Server;
let base = '';
const env = { XDG_CACHE_HOME: process.env.XDG_CACHE_HOME, TORCH_HOME: process.env.TORCH_HOME, HF_HOME: process.env.HF_HOME };

beforeAll(async () => {
  process.env.XDG_CACHE_HOME = join(tmp, 'cache');
  process.env.TORCH_HOME = join(tmp, 'torch');
  process.env.HF_HOME = join(tmp, 'hf');
  server = createServer((req, res) => {
    if (req.url === '/cut.bin') {
      // declares the full size, sends a third, then drops the connection
      res.writeHead(200, { 'content-length': String(body.length) });
      res.write(body.subarray(0, 100_000), () => res.destroy());
      return;
    }
    if (req.url === '/missing.bin') {
      res.writeHead(404).end();
      return;
    }
    const bytes = req.url === '/corrupt.bin' ? body.map((v, i) => (i === 1234 ? v ^ 1 : v)) : body;
    res.writeHead(200, { 'content-length': String(bytes.length) }).end(bytes);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  for (const [k, v] of Object.entries(env)) v === undefined ? delete process.env[k] : (process.env[k] = v);
  rmSync(tmp, { recursive: true, force: true });
});

const cacheFiles = () => (existsSync(join(tmp, 'cache', 'dcam-webgpu')) ? readdirSync(join(tmp, 'cache', 'dcam-webgpu')) : []);

describe('dcam teacher fetch', () => {
  it('downloads, verifies and caches; the second call is served from the cache with the server gone', async () => {
    const r = await dcam('teacher', 'fetch', '--from', `${base}/teacher.bin`, '--sha256', hash);
    expect(r.code, r.err).toBe(0);
    const file = join(tmp, 'cache', 'dcam-webgpu', 'teacher.bin');
    expect(r.out).toContain(file);
    expect(r.out).toMatch(/\(download\)/);
    expect(Buffer.compare(readFileSync(file), Buffer.from(body))).toBe(0);
    const again = await fetchTeacher({ from: 'http://127.0.0.1:9/teacher.bin', sha256: hash, offline: true });
    expect(again).toMatchObject({ file, origin: 'cache' });
  });

  it('refuses a corrupted file, naming both hashes, and keeps nothing', async () => {
    const before = cacheFiles();
    const r = await dcam('teacher', 'fetch', '--from', `${base}/corrupt.bin`, '--sha256', hash);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(new RegExp(`^dcam: .*corrupt\\.bin: sha256 mismatch: got [0-9a-f]{64}, expected ${hash}; the file was not kept$`, 'm'));
    expect(cacheFiles()).toEqual(before);
  });

  it('an interrupted download fails and leaves no partial file', async () => {
    const before = cacheFiles();
    const r = await dcam('teacher', 'fetch', '--from', `${base}/cut.bin`, '--sha256', hash);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^dcam: download of .*cut\.bin interrupted after \d+ bytes/m);
    expect(cacheFiles()).toEqual(before);
  });

  it("a known file name is checked against the known full hash (torchvision's resnet18-f37072fd.pth)", async () => {
    const r = await dcam('teacher', 'fetch', '--from', `${base}/resnet18-f37072fd.pth`);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`expected ${TEACHER_SOURCES.torchvision.sha256}`);
    expect(cacheFiles()).not.toContain('resnet18-f37072fd.pth');
  });

  it("reuses torch.hub's cache; offline without a cached copy is a clear error; HTTP errors are named", async () => {
    mkdirSync(join(tmp, 'torch', 'hub', 'checkpoints'), { recursive: true });
    writeFileSync(join(tmp, 'torch', 'hub', 'checkpoints', 'hub.pth'), body);
    const got = await fetchTeacher({ from: 'http://127.0.0.1:9/hub.pth', sha256: hash, offline: true });
    expect(got).toMatchObject({ origin: 'torch.hub cache', file: join(tmp, 'torch', 'hub', 'checkpoints', 'hub.pth') });
    let r = await dcam('teacher', 'fetch', '--from', 'timm', '--offline');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^dcam: resnet18\.tv_in1k\.safetensors is not in the cache .* --offline forbids downloading it$/m);
    r = await dcam('teacher', 'fetch', '--from', `${base}/missing.bin`, '--sha256', hash);
    expect(r.err).toMatch(/^dcam: cannot download .*missing\.bin: HTTP 404/m);
    r = await dcam('teacher', 'fetch', '--from', `${base}/unknown.bin`);
    expect(r.err).toMatch(/^dcam: .*unknown\.bin: unknown file, so its sha256 cannot be checked: pass --sha256 HEX$/m);
  });
});
