/**
 * `dcam serve` on a run trained and evaluated by the CLI, over loopback: answers equal `dcam infer`'s
 * scores and labels; 400 / 401 / 404 / 413 / 503 / 504; batching; metrics; SIGTERM with requests in
 * flight loses none; and two workers behind nginx under load (autocannon), one killed mid-run, every
 * request answered.
 */
import { spawn, spawnSync } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSyntheticDataset } from '../src/data/synthetic.js';
import { loadDetector } from '../src/node.js';
import { InspectionServer, SERVE_DEFAULTS, type ServeOptions } from '../src/serve/server.js';
import { dcam } from './cli-helpers.js';
import { useRuntime } from './helpers.js';
import { hostileBmps, hostileJpegs, hostilePngs, hostileTiffs, validPng } from './hostile-images.js';
import { startServeWorker } from './serve-worker.mjs';

const ctx = useRuntime();
const repo = join(import.meta.dirname, '..');
const tmp = mkdtempSync(join(tmpdir(), 'dcam-serve-'));
const data = join(tmp, 'data');
const run = join(tmp, 'parts');
const testDir = join(data, 'synth_disc', 'test');
let inferred: Array<{ image: string; score: number; label: string }> = [];
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

beforeAll(async () => {
  generateSyntheticDataset(data, { seed: 5, size: 32, train: 8, testGood: 3, testPerDefect: 2 });
  expect((await dcam('train', '--data', data, '--out', run, '--method', 'stfpm', '--size', '32', '--steps', '4', '--batch', '4')).code).toBe(0);
  expect((await dcam('eval', '--run', run)).code).toBe(0);
  expect((await dcam('infer', '--run', run, '--out', join(tmp, 'inferred'), testDir)).code).toBe(0);
  inferred = JSON.parse(readFileSync(join(tmp, 'inferred', 'scores.json'), 'utf8'));
}, 120_000);

async function startServer(o: Partial<ServeOptions> = {}): Promise<{ server: InspectionServer; url: string }> {
  const detector = await loadDetector({ run, runtime: ctx.rt });
  const server = new InspectionServer(ctx.rt, [{ name: 'parts', dir: run, detector }], { ...SERVE_DEFAULTS, port: 0, ...o });
  const url = await server.listen();
  await server.warmUp();
  return { server, url };
}

const png = (file: string) => readFileSync(join(testDir, file));
const post = (url: string, body: Uint8Array, headers: Record<string, string> = {}) =>
  fetch(`${url}/v1/inspect`, { method: 'POST', body: new Uint8Array(body), headers: { 'content-type': 'image/png', ...headers } });

/** A real PNG whose header claims width x height (a decompression bomb's shape: the sizes are never checked against the data). */
function claimedPng(width: number, height: number): Uint8Array {
  const bytes = Buffer.from(png('good/000.png'));
  bytes.writeUInt32BE(width, 16);
  bytes.writeUInt32BE(height, 20);
  return bytes;
}

describe('dcam serve: answers', () => {
  it("answers each image with dcam infer's score and label, batched; raw and PNG maps; runs and metrics", async () => {
    const { server, url } = await startServer({ maxBatch: 4, maxWaitMs: 50 });
    try {
      const answers = await Promise.all(inferred.map(async (rec) => {
        const r = await post(url, readFileSync(rec.image));
        expect(r.status).toBe(200);
        return { rec, body: (await r.json()) as { score: number; label: string; normalized: number; run: string; latency_ms: number } };
      }));
      for (const { rec, body } of answers) {
        expect(body.run).toBe('parts');
        expect(body.score).toBeCloseTo(rec.score, 5);
        expect(body.label).toBe(rec.label);
        expect(body.latency_ms).toBeGreaterThan(0);
      }
      const form = new FormData();
      form.append('file', new Blob([png('good/000.png')], { type: 'image/png' }), '000.png');
      const rawReply = await fetch(`${url}/v1/inspect?map=raw`, { method: 'POST', body: form });
      const raw = (await rawReply.json()) as { score: number; map: { format: string; width: number; data: string } };
      expect(rawReply.status, JSON.stringify(raw)).toBe(200);
      const map = new Float32Array(new Uint8Array(Buffer.from(raw.map.data, 'base64')).buffer);
      expect(raw.map.format).toBe('float32le');
      expect(map.length).toBe(32 * 32);
      expect(Math.max(...map)).toBeCloseTo(raw.score, 6);
      const overlay = (await (await fetch(`${url}/v1/inspect?map=png`, { method: 'POST', body: png('good/000.png'), headers: { 'content-type': 'image/png' } })).json()) as { map: { format: string; data: string } };
      expect(Buffer.from(overlay.map.data, 'base64').subarray(1, 4).toString()).toBe('PNG');

      const runs = (await (await fetch(`${url}/v1/runs`)).json()) as { runs: Array<{ name: string; size: number; thresholds: { image: number } }> };
      expect(runs.runs[0]).toMatchObject({ name: 'parts', size: 32 });
      expect(runs.runs[0].thresholds.image).toBeGreaterThan(0);
      const metrics = await (await fetch(`${url}/metrics`)).text();
      expect(metrics).toMatch(new RegExp(`dcam_requests_total\\{run="parts",status="200"\\} ${inferred.length + 2}`));
      const batches = Number(/dcam_batch_size_count\{run="parts"\} (\d+)/.exec(metrics)![1]);
      expect(batches).toBeLessThan(inferred.length + 3); // some requests shared a batch (+1: the warm-up)
      expect(metrics).toMatch(/dcam_gpu_memory_bytes\{kind="live"\} \d+/);
      expect(metrics).toMatch(/dcam_queue_depth\{run="parts"\} 0/);
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      expect((await fetch(`${url}/readyz`)).status).toBe(200);
    } finally {
      await server.close();
    }
  });

  it('400 for what is not an image or a malformed form, 404 for an unknown run, 413 for a body or an image header over the limits', async () => {
    const { server, url } = await startServer({ bodyLimit: 64 * 1024, maxPixels: 4096 * 4096 });
    try {
      const bad = await post(url, new TextEncoder().encode('not an image'));
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { error: string }).error).toMatch(/not a PNG, JPEG, BMP or TIFF/);
      const truncated = await post(url, png('good/000.png').subarray(0, 60));
      expect(truncated.status).toBe(400);
      expect((await fetch(`${url}/v1/inspect`, { method: 'POST' })).status).toBe(400);
      expect((await fetch(`${url}/v1/inspect?run=other`, { method: 'POST', body: png('good/000.png'), headers: { 'content-type': 'image/png' } })).status).toBe(404);
      const big = await post(url, new Uint8Array(65 * 1024));
      expect(big.status).toBe(413);
      // malformed multipart bodies are the client's fault: 400, not 500
      const noClose = await fetch(`${url}/v1/inspect`, { method: 'POST', body: '--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\nabc', headers: { 'content-type': 'multipart/form-data; boundary=XyZ' } });
      expect(noClose.status, await noClose.clone().text()).toBe(400);
      const noBoundary = await fetch(`${url}/v1/inspect`, { method: 'POST', body: 'abc', headers: { 'content-type': 'multipart/form-data' } });
      expect(noBoundary.status, await noBoundary.clone().text()).toBe(400);
      const bomb = await post(url, claimedPng(20000, 20000)); // 400 megapixels declared by a small file
      expect(bomb.status).toBe(413);
      expect(((await bomb.json()) as { error: string }).error).toMatch(/20000x20000/);
    } finally {
      await server.close();
    }
  });

  it('503 + Retry-After when the queue is full, 504 past the timeout', async () => {
    // A long batching window keeps the first request waiting, so the queue (limit 1) is full.
    let { server, url } = await startServer({ maxBatch: 8, maxWaitMs: 1500, queueLimit: 1 });
    try {
      const first = post(url, png('good/000.png'));
      await new Promise((r) => setTimeout(r, 200));
      const second = await post(url, png('good/001.png'));
      expect(second.status).toBe(503);
      expect(second.headers.get('retry-after')).toBe('1');
      expect((await first).status).toBe(200);
    } finally {
      await server.close();
    }
    ({ server, url } = await startServer({ maxBatch: 8, maxWaitMs: 1000, timeoutMs: 100 }));
    try {
      const slow = await post(url, png('good/000.png'));
      expect(slow.status).toBe(504);
    } finally {
      await server.close();
    }
  });

  it('with a token: 401 without it or with a wrong one (constant-time check), 200 with it; probes stay open', async () => {
    const { server, url } = await startServer({ token: 's3cret' });
    try {
      expect((await post(url, png('good/000.png'))).status).toBe(401);
      const wrong = await post(url, png('good/000.png'), { authorization: 'Bearer s3cre' });
      expect(wrong.status).toBe(401);
      expect(wrong.headers.get('www-authenticate')).toBe('Bearer');
      expect((await fetch(`${url}/metrics`)).status).toBe(401);
      expect((await post(url, png('good/000.png'), { authorization: 'Bearer s3cret' })).status).toBe(200);
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      expect((await fetch(`${url}/readyz`)).status).toBe(200);
    } finally {
      await server.close();
    }
  });

  it('with a token, no spelling of a guarded route reaches it without the token (percent-escapes, case, doubled slashes, dot segments)', async () => {
    const { server, url } = await startServer({ token: 's3cret' });
    const { port } = new URL(url);
    /** A request with the path sent byte for byte as given (fetch would normalise it). */
    const raw = (method: string, path: string, headers: Record<string, string> = {}, body?: Uint8Array) =>
      new Promise<number>((done, fail) => {
        const req = httpRequest({ host: '127.0.0.1', port, method, path, headers: body ? { 'content-type': 'image/png', ...headers } : headers }, (res) => {
          res.resume();
          res.on('end', () => done(res.statusCode!));
        });
        req.on('error', fail);
        req.end(body);
      });
    /** Spellings of a path: each character percent-encoded in turn, upper case, doubled and trailing slashes, dot segments, a query. */
    const spellings = (path: string): string[] => {
      const out = new Set<string>([path, path.toUpperCase(), `/${path}`, path.replace(/\//g, '//'), `${path}/`, `/.${path}`, `${path}?x=1`, `${path}%3Fx`, `/x/..${path}`]);
      for (let i = 1; i < path.length; i++) {
        const ch = path[i];
        const hex = ch.charCodeAt(0).toString(16);
        out.add(path.slice(0, i) + `%${hex}` + path.slice(i + 1));
        out.add(path.slice(0, i) + `%${hex.toUpperCase()}` + path.slice(i + 1));
        out.add(path.slice(0, i) + `%25${hex}` + path.slice(i + 1)); // double-encoded
      }
      return [...out];
    };
    const image = png('good/000.png');
    const routes: Array<[string, string]> = [['POST', '/v1/inspect'], ['GET', '/v1/runs'], ['GET', '/metrics'], ['HEAD', '/metrics'], ['GET', '/v1/inspect'], ['GET', '/nothing-here']];
    try {
      let reached = 0;
      for (const [method, path] of routes) {
        for (const p of spellings(path)) {
          const body = method === 'POST' ? image : undefined;
          expect(await raw(method, p, {}, body), `${method} ${p} without the token`).toBe(401);
          expect(await raw(method, p, { authorization: 'Bearer wrong' }, body), `${method} ${p} with a wrong token`).toBe(401);
          if ((await raw(method, p, { authorization: 'Bearer s3cret' }, body)) === 200) reached++;
        }
      }
      // the spellings are real ways in: Fastify routes several of them to the guarded handlers
      expect(reached).toBeGreaterThan(routes.length * 2);
      expect(await raw('POST', '/%761/inspect', { authorization: 'Bearer s3cret' }, image)).toBe(200);
      expect(await raw('GET', '/%6detrics', { authorization: 'Bearer s3cret' })).toBe(200);
      // the probes are open in every spelling that reaches them
      for (const p of spellings('/healthz')) {
        const status = await raw('GET', p);
        expect([200, 401], `GET ${p}`).toContain(status);
      }
      expect(await raw('GET', '/%68ealthz')).toBe(200);
      expect(await raw('GET', '/readyz')).toBe(200);
    } finally {
      await server.close();
    }
  });
});

// ---- hostile uploads: decoded in workers with a deadline; the service keeps answering ---------------

/** A valid but large PNG (slow to decode: a deadline of a few ms cannot hold it). */
const bigPng = () => validPng(2400, 2400);
const jpegFixture = new Uint8Array(readFileSync(join(repo, 'test', 'fixtures', 'codecs', 'baseline-420.jpg')));
const hostileCorpus = [...hostilePngs(16 << 20), ...hostileJpegs(jpegFixture), ...hostileBmps(), ...hostileTiffs(16 << 20)];

describe('dcam serve: hostile uploads', () => {
  it(`each of ${hostileCorpus.length} damaged or hostile files is a 4xx within seconds, and /healthz answers meanwhile; then a good image is scored`, async () => {
    const { server, url } = await startServer();
    try {
      for (const f of hostileCorpus) {
        const t0 = performance.now();
        const [reply, health] = await Promise.all([post(url, f.bytes), fetch(`${url}/healthz`).then((r) => ({ status: r.status, ms: performance.now() - t0 }))]);
        const body = (await reply.json()) as { error?: string };
        expect([400, 413], `${f.name} (${f.why}): ${reply.status} ${JSON.stringify(body)}`).toContain(reply.status);
        expect(body.error, f.name).toMatch(/^image: /);
        expect(performance.now() - t0, f.name).toBeLessThan(5000);
        expect(health.status).toBe(200);
        expect(health.ms, `/healthz while ${f.name} was refused`).toBeLessThan(1000);
      }
      const good = await post(url, png('good/000.png'));
      expect(good.status).toBe(200);
    } finally {
      await server.close();
    }
  });

  it("an image not decoded by the deadline is a 400 and costs only its worker: /healthz answers within a second meanwhile, the next image is scored", async () => {
    const { server, url } = await startServer({ decodeTimeoutMs: 30, decodeWorkers: 1 });
    try {
      const big = bigPng();
      const slow = post(url, big);
      await new Promise((r) => setTimeout(r, 10));
      const t0 = performance.now();
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      expect(performance.now() - t0).toBeLessThan(1000);
      const reply = await slow;
      expect(reply.status).toBe(400);
      expect(((await reply.json()) as { error: string }).error).toMatch(/not decoded within 30 ms/);
      expect((await post(url, png('good/000.png'))).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});

// ---- the real process: signals, and scale-out behind nginx ----------------------------------------

/** Starts `dcam serve` as users do (bin/dcam.mjs) on the test's run, resolves when it reports ready. */
const startWorker = (args: string[] = []) => startServeWorker(join(repo, 'bin/dcam.mjs'), run, args);

describe('dcam serve: the process', () => {
  it('SIGTERM while a large upload is being decoded: it is answered, then the process exits 0 promptly; a run still training is served with a warning', async () => {
    writeFileSync(join(run, '.lock'), JSON.stringify({ pid: process.pid, host: hostname(), since: '2026-12-06T00:00:00Z' }));
    const w = await startWorker(['--decode-timeout-ms', '60000']).finally(() => rmSync(join(run, '.lock'), { force: true }));
    expect(w.log()).toMatch(/WARNING: .*parts is being trained by process \d+ .*serving its latest checkpoint/);
    const inFlight = post(w.url, bigPng());
    await new Promise((r) => setTimeout(r, 100));
    w.proc.kill('SIGTERM');
    expect((await inFlight).status).toBe(200);
    const stopped = Date.now();
    expect(await w.exit).toBe(0);
    expect(Date.now() - stopped).toBeLessThan(10_000);
  }, 90_000);

  it('SIGTERM with requests in flight: every one is answered, then the process exits 0', async () => {
    const w = await startWorker(['--max-batch', '4', '--max-wait-ms', '400']);
    const inFlight = [0, 1, 2, 3, 4, 5].map((i) => post(w.url, png(`good/00${i % 3}.png`)));
    await new Promise((r) => setTimeout(r, 150)); // requests arrived and wait in the batching window
    w.proc.kill('SIGTERM');
    const answers = await Promise.all(inFlight);
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    const stopped = Date.now();
    expect(await w.exit).toBe(0);
    expect(Date.now() - stopped, 'exits promptly once the last answer is sent').toBeLessThan(10_000);
  }, 90_000);

  const nginx = spawnSync('sh', ['-c', 'command -v nginx || ls /usr/sbin/nginx'], { encoding: 'utf8' }).stdout.trim().split('\n')[0];
  const underCI = process.env.CI === 'true';
  const nginxIt = nginx || underCI ? it : it.skip;
  if (!nginx && !underCI) console.warn('skipped: two workers behind nginx: nginx is not installed (apt-get install nginx-light; .ci/run does)');

  nginxIt(`two workers behind nginx under load (autocannon: 300 requests, 8 connections), one killed mid-run: every request answered${nginx ? '' : ' [skipped: nginx is not installed]'}`, async () => {
    expect(nginx, 'nginx must be installed under CI (.ci/run installs nginx-light)').toBeTruthy();
    const workers = await Promise.all([startWorker(), startWorker()]);
    const dir = join(tmp, 'nginx');
    mkdirSync(join(dir, 'logs'), { recursive: true });
    const port = 20000 + Math.floor(Math.random() * 20000);
    const upstreams = workers.map((w) => `server ${new URL(w.url).host} max_fails=1 fail_timeout=30s;`).join('\n    ');
    writeFileSync(join(dir, 'nginx.conf'), [
      process.getuid?.() === 0 ? 'user root;' : '',
      'daemon off;', 'worker_processes 1;', `pid ${dir}/nginx.pid;`, `error_log ${dir}/logs/error.log warn;`,
      'events { worker_connections 256; }',
      'http {',
      '  access_log off;',
      `  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;`,
      '  client_max_body_size 32m;',
      `  upstream dcam {\n    ${upstreams}\n    keepalive 16;\n  }`,
      `  server {\n    listen 127.0.0.1:${port};`,
      // A worker that dies mid-request: nginx retries the request on the other one (POST included).
      '    location / { proxy_pass http://dcam; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_next_upstream error timeout http_502 http_503 non_idempotent; proxy_next_upstream_tries 3; proxy_connect_timeout 2s; proxy_read_timeout 60s; }',
      '  }',
      '}',
    ].join('\n'));
    const proxy = spawn(nginx, ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let proxyLog = '';
    proxy.stderr!.on('data', (b: Buffer) => (proxyLog += b.toString()));
    try {
      for (let i = 0; i < 50; i++) {
        const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false);
        if (ok) break;
        await new Promise((r) => setTimeout(r, 100));
        if (i === 49) throw new Error(`nginx did not start: ${proxyLog}`);
      }
      const victim = workers[0];
      const victimId = ((await (await fetch(`${victim.url}/healthz`)).json()) as { worker: string }).worker;
      const byWorker = new Map<string, number>();
      const statuses = new Map<number, number>();
      let answered = 0;
      const result = await autocannon({
        url: `http://127.0.0.1:${port}/v1/inspect`,
        connections: 8,
        amount: 300,
        timeout: 60,
        requests: [{
          method: 'POST',
          headers: { 'content-type': 'image/png' },
          body: png('good/000.png'),
          onResponse: (status, _body, _context, headers) => {
            statuses.set(status, (statuses.get(status) ?? 0) + 1);
            const who = String(headers?.['x-dcam-worker'] ?? 'none');
            byWorker.set(who, (byWorker.get(who) ?? 0) + 1);
            if (++answered === 100) victim.proc.kill('SIGKILL'); // a crash, not a graceful stop
          },
        }],
      });
      await victim.exit;
      expect(result.errors, 'connection errors').toBe(0);
      expect(result.timeouts).toBe(0);
      expect(result.non2xx).toBe(0);
      expect([...statuses]).toEqual([[200, 300]]);
      // Every request is accounted for: answered by the victim before it died, or by the survivor
      // (including those the victim had in flight, which nginx retried there).
      const survivorId = ((await (await fetch(`${workers[1].url}/healthz`)).json()) as { worker: string }).worker;
      const fromVictim = byWorker.get(victimId) ?? 0;
      const fromSurvivor = byWorker.get(survivorId) ?? 0;
      expect([...byWorker.keys()].sort()).toEqual([victimId, survivorId].sort());
      expect(fromVictim).toBeGreaterThan(0);
      expect(fromVictim).toBeLessThanOrEqual(100);
      expect(fromVictim + fromSurvivor).toBe(300);
      const retried = readFileSync(join(dir, 'logs', 'error.log'), 'utf8').split('\n').filter((l) => /upstream/.test(l)).length;
      console.log(`nginx scale-out: ${fromVictim} answered by the killed worker before it died, ${fromSurvivor} by the other; nginx logged ${retried} upstream failure(s) it retried elsewhere`);
    } finally {
      proxy.kill('SIGTERM');
      for (const w of workers) w.proc.kill('SIGTERM');
      await Promise.all(workers.map((w) => w.exit));
    }
  }, 180_000);
});
