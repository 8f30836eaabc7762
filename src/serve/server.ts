/**
 * `dcam serve`: trained runs kept on the GPU behind HTTP (Fastify), requests batched dynamically, each
 * answered with the run's OK / defect verdict. Everything a request says about sizes is checked before
 * any work is spent on it: the body size (Fastify's limit, 413), the image's header (its declared pixel
 * count, 413, before decoding: decompression bombs), the queue (503 + Retry-After), the time (504).
 *
 *   POST /v1/inspect[?run=NAME][&map=png|raw]   image bytes (image/*, application/octet-stream) or multipart
 *   GET  /v1/runs        loaded runs, sizes, thresholds
 *   GET  /healthz        alive;  GET /readyz: models loaded and warm (503 before, and while shutting down)
 *   GET  /metrics        Prometheus text format
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { hostname } from 'node:os';
import { basename, resolve } from 'node:path';
import multipart from '@fastify/multipart';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { ImageDecodeError, ImageTooLargeError, limits as imageLimits, probeImage } from '../data/image.js';
import { tileGrid, TilingError, type Tiling } from '../data/tiles.js';
import type { Detector, InspectionResult } from '../detector.js';
import { overlayScaledPng } from '../eval/heatmap.js';
import { rangeColourScale, thresholdColourScale } from '../eval/thresholds.js';
import type { Runtime } from '../graph/runtime.js';
import { DynamicBatcher, QueueFullError } from './batcher.js';
import { DECODE_POOL_DEFAULTS, DecodePool, DecodeRefusedError } from './decode-pool.js';
import { ServeMetrics } from './metrics.js';

export interface ServeOptions {
  host: string;
  port: number;
  /** Most images in one GPU batch, and how long the first of them may wait for others. */
  maxBatch: number;
  maxWaitMs: number;
  /** Requests waiting per run beyond which new ones get 503. */
  queueLimit: number;
  /** Per request, from arrival to answer. */
  timeoutMs: number;
  /** Largest request body. */
  bodyLimit: number;
  /** Largest image, in pixels, by its header (checked before decoding). */
  maxPixels: number;
  /** When set, every request but the probes (/healthz, /readyz) needs `Authorization: Bearer <token>`. */
  token: string | null;
  /** Image decoding off the event loop: worker threads, and each image's deadline and heap (decode-pool.ts). */
  decodeWorkers: number;
  decodeTimeoutMs: number;
  decodeHeapMb: number;
}

export const SERVE_DEFAULTS: ServeOptions = {
  host: '127.0.0.1',
  port: 8080,
  maxBatch: 8,
  maxWaitMs: 5,
  queueLimit: 64,
  timeoutMs: 30_000,
  bodyLimit: 32 * 1024 * 1024,
  maxPixels: imageLimits.maxPixels,
  token: null,
  decodeWorkers: DECODE_POOL_DEFAULTS.workers,
  decodeTimeoutMs: DECODE_POOL_DEFAULTS.timeoutMs,
  decodeHeapMb: DECODE_POOL_DEFAULTS.heapMb,
};

/** A loaded run, by name (its folder's name). */
export interface ServedRun {
  name: string;
  dir: string;
  detector: Detector;
}

/** An HTTP error with its status (and headers) for the client. */
class RequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

interface Job {
  image: { width: number; height: number; data: Uint8Array };
  keepInput: boolean;
  /** The category the client named (?category=), else the detector finds the nearest. */
  category?: string;
}

/** A route's access rule, in its Fastify route config: routes are guarded by the token unless open. */
interface RouteAccess {
  open?: boolean;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest();

/** Constant-time check of a bearer token (both sides hashed first, so lengths never leak either). */
function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer (.+)$/.exec(header ?? '');
  return !!m && timingSafeEqual(sha256(m[1]), sha256(token));
}

export class InspectionServer {
  readonly app: FastifyInstance;
  readonly metrics: ServeMetrics;
  readonly worker = `${hostname()}:${process.pid}`;
  private readonly runs = new Map<string, ServedRun>();
  private readonly batchers = new Map<string, DynamicBatcher<Job, InspectionResult>>();
  private ready = false;
  private closing = false;
  /** Uploads are decoded here, never on the event loop. */
  private readonly decoder: DecodePool;

  constructor(
    readonly runtime: Runtime,
    runs: readonly ServedRun[],
    readonly options: ServeOptions,
  ) {
    for (const r of runs) {
      if (this.runs.has(r.name)) throw new Error(`two runs are named ${r.name} (${this.runs.get(r.name)!.dir} and ${r.dir}): serve runs from folders with different names`);
      this.runs.set(r.name, r);
      const batcher = new DynamicBatcher<Job, InspectionResult>(
        (jobs) => this.inspectBatch(r.detector, jobs),
        { maxBatch: options.maxBatch, maxWaitMs: options.maxWaitMs, queueLimit: options.queueLimit },
      );
      batcher.onBatch = (size, ms) => this.metrics.batch(r.name, size, ms);
      this.batchers.set(r.name, batcher);
    }
    this.decoder = new DecodePool({ workers: options.decodeWorkers, timeoutMs: options.decodeTimeoutMs, heapMb: options.decodeHeapMb });
    this.metrics = new ServeMetrics(runtime, () => [...this.batchers].map(([name, b]) => [name, b.depth + (b.busy ? 1 : 0)] as [string, number]), options.maxBatch);
    this.app = this.buildApp();
  }

  /** One GPU batch of jobs; jobs that name a category are judged by its thresholds (the maps are the same). */
  private async inspectBatch(detector: Detector, jobs: Job[]): Promise<InspectionResult[]> {
    const inputs = jobs.map((j, k) => detector.prepare(j.image, `image ${k}`));
    const results = await detector.inspectPrepared(inputs, { keepInput: jobs.some((j) => j.keepInput) });
    const named = jobs.map((j, k) => (j.category === undefined ? null : k)).filter((k): k is number => k !== null);
    if (named.length === 0) return results;
    // judged again by the named category (no second pass on the GPU: the maps and embeddings are kept)
    return results.map((r, k) => (jobs[k].category === undefined ? r : { ...detector.judged(r, jobs[k].category!), input: r.input }));
  }

  /** Runs one map per run (compiles the pipelines), then reports ready. */
  async warmUp(): Promise<void> {
    await this.decoder.ready();
    for (const r of this.runs.values()) {
      const S = r.detector.size;
      await r.detector.inspect({ width: S, height: S, data: new Uint8Array(S * S * 3).fill(128) });
    }
    this.ready = true;
  }

  async listen(): Promise<string> {
    return this.app.listen({ host: this.options.host, port: this.options.port });
  }

  /**
   * Graceful stop: not ready, no new connections; requests in flight are answered, then the batchers are
   * drained and the models freed.
   */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.ready = false;
    await this.app.close();
    for (const b of this.batchers.values()) await b.drain();
    await this.decoder.close();
    for (const r of this.runs.values()) r.detector.dispose();
  }

  private buildApp(): FastifyInstance {
    const o = this.options;
    const app = Fastify({ bodyLimit: o.bodyLimit, logger: false, forceCloseConnections: 'idle', return503OnClosing: true });
    // Image bytes arrive as they are; multipart forms as one file part.
    app.addContentTypeParser(/^(image\/[a-z0-9.+-]+|application\/octet-stream)$/i, { parseAs: 'buffer', bodyLimit: o.bodyLimit }, (_req, body, done) => done(null, body));
    void app.register(multipart, { limits: { fileSize: o.bodyLimit, files: 1, fields: 4, parts: 5 } });

    app.addHook('onRequest', async (req, reply) => {
      void reply.header('x-dcam-worker', this.worker);
      // The route Fastify matched decides, never the URL's spelling (its router decodes percent-escapes and
      // may merge slashes): every route, the not-found one included, needs the token unless it says it is open.
      const open = (req.routeOptions.config as RouteAccess | undefined)?.open === true;
      if (o.token && !open && !tokenMatches(req.headers.authorization, o.token)) {
        return reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'unauthorized: send Authorization: Bearer <token>' });
      }
    });
    // While stopping, answers close their connection: a kept-alive one would hold the process for
    // Fastify's keep-alive timeout (72 s) after the last request in flight is answered.
    app.addHook('onSend', async (_req, reply) => {
      if (this.closing) void reply.header('connection', 'close');
    });
    app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
      const status = err instanceof RequestError ? err.status : err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
      if (err instanceof RequestError) void reply.headers(err.headers);
      // Fastify's own 4xx (body too large, bad content type) carry their reason; anything else is ours.
      const message = status === 413 && err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? `request body over the limit of ${o.bodyLimit} bytes` : err.message;
      void reply.code(status).send({ error: message });
    });

    // The probes are the only open routes (a load balancer's health checks carry no token).
    const open = { config: { open: true } satisfies RouteAccess };
    app.get('/healthz', open, async () => ({ status: 'alive', worker: this.worker }));
    app.get('/readyz', open, async (_req, reply) => {
      if (!this.ready) return reply.code(503).send({ status: this.closing ? 'shutting down' : 'warming up' });
      return { status: 'ready', runs: [...this.runs.keys()] };
    });
    app.get('/metrics', async (_req, reply) => reply.type(this.metrics.contentType).send(await this.metrics.text()));
    app.get('/v1/runs', async () => ({
      worker: this.worker,
      runs: [...this.runs.values()].map((r) => ({ name: r.name, size: r.detector.size, tiling: r.detector.tiling, method: r.detector.method.method, thresholds: r.detector.thresholds ?? null })),
      batching: { maxBatch: o.maxBatch, maxWaitMs: o.maxWaitMs, queueLimit: o.queueLimit },
    }));
    app.post('/v1/inspect', (req, reply) => this.inspect(req, reply));
    return app;
  }

  private pickRun(req: FastifyRequest): ServedRun {
    const want = (req.query as Record<string, string | undefined>).run;
    if (want === undefined) {
      if (this.runs.size === 1) return [...this.runs.values()][0];
      throw new RequestError(400, `several runs are served: choose one with ?run= (${[...this.runs.keys()].join(', ')})`);
    }
    const r = this.runs.get(want);
    if (!r) throw new RequestError(404, `no run named ${JSON.stringify(want)} (served: ${[...this.runs.keys()].join(', ')})`);
    return r;
  }

  private async body(req: FastifyRequest): Promise<Uint8Array> {
    if (req.isMultipart()) {
      let bytes: Buffer;
      try {
        const part = await req.file();
        if (!part) throw new RequestError(400, 'the multipart form has no file part');
        bytes = await part.toBuffer(); // @fastify/multipart enforces the size limit (413)
      } catch (e) {
        // a malformed form (no boundary, no closing boundary, broken headers) is the client's fault
        const status = (e as { statusCode?: number }).statusCode;
        if (e instanceof RequestError || (status && status >= 400 && status < 500)) throw e;
        throw new RequestError(400, `malformed multipart body: ${(e as Error).message}`);
      }
      return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    }
    const b = req.body;
    if (!(b instanceof Buffer) || b.length === 0) throw new RequestError(400, 'send the image as the request body (Content-Type image/png, image/jpeg, ... or application/octet-stream) or as a multipart file');
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  }

  /** The image, checked and decoded: its header first (size, on this thread), then its pixels (in a worker). */
  private async decode(bytes: Uint8Array, tiling: Tiling | null): Promise<Job['image']> {
    let header;
    try {
      header = probeImage(bytes, 'image');
    } catch (e) {
      if (e instanceof ImageTooLargeError) throw new RequestError(413, e.message);
      if (e instanceof ImageDecodeError) throw new RequestError(400, e.message);
      throw e;
    }
    if (header.width * header.height > this.options.maxPixels) {
      throw new RequestError(413, `image: ${header.width}x${header.height} is over the limit of ${this.options.maxPixels} pixels`);
    }
    if (tiling) {
      // a tiled run's tiles, counted from the header: an image too small for one, or cut into too many, is refused undecoded
      try {
        tileGrid(header.width, header.height, tiling);
      } catch (e) {
        if (!(e instanceof TilingError)) throw e;
        throw new RequestError(e.reason === 'too-many' ? 413 : 400, `${e.message} (the run's tiling)`);
      }
    }
    try {
      return await this.decoder.decode(bytes, this.options.maxPixels);
    } catch (e) {
      if (e instanceof DecodeRefusedError) throw new RequestError(e.status, e.message);
      throw e;
    }
  }

  private async inspect(req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
    const t0 = performance.now();
    let runName = 'unknown';
    try {
      if (this.closing) throw new RequestError(503, 'shutting down', { 'retry-after': '1' });
      const run = this.pickRun(req);
      runName = run.name;
      const query = req.query as Record<string, string | undefined>;
      const mapFormat = query.map;
      if (mapFormat !== undefined && mapFormat !== 'png' && mapFormat !== 'raw') throw new RequestError(400, `map must be png or raw, got ${JSON.stringify(mapFormat)}`);
      const category = query.category;
      if (category !== undefined && !run.detector.categories.includes(category)) {
        throw new RequestError(400, `no thresholds for category ${JSON.stringify(category)} in run ${run.name} (${run.detector.categories.length ? `it has ${run.detector.categories.join(', ')}` : 'it has one threshold for all its images'})`);
      }
      const image = await this.decode(await this.body(req), run.detector.tiling);
      const result = await this.withTimeout(this.batchers.get(run.name)!.submit({ image, keepInput: mapFormat === 'png', category }));
      const latency = performance.now() - t0;
      this.metrics.request(run.name, 200, latency);
      return {
        run: run.name,
        score: result.score,
        normalized: result.normalized,
        label: result.label,
        ...(result.category ? { category: result.category, category_from: result.categoryFrom } : {}),
        latency_ms: Math.round(latency * 100) / 100,
        size: result.size,
        regions: result.regions,
        ...(mapFormat ? { map: mapPayload(result, mapFormat, run.detector) } : {}),
      };
    } catch (e) {
      const err = e instanceof QueueFullError ? new RequestError(503, `busy: ${e.message}; retry later`, { 'retry-after': '1' }) : e;
      this.metrics.request(runName, err instanceof RequestError ? err.status : 500, performance.now() - t0);
      if (err instanceof RequestError) return reply.code(err.status).headers(err.headers).send({ error: err.message });
      throw err;
    }
  }

  private withTimeout<T>(work: Promise<T>): Promise<T> {
    const ms = this.options.timeoutMs;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new RequestError(504, `no answer within ${ms} ms (the GPU is overloaded or stuck)`)), ms);
    });
    return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
  }
}

function mapPayload(r: InspectionResult, format: 'png' | 'raw', det: Detector): { format: string; width: number; height: number; data: string } {
  const { width, height } = r;
  if (format === 'raw') {
    const le = new Float32Array(r.map); // Float32Array is little-endian on every platform Node runs on
    return { format: 'float32le', width, height, data: Buffer.from(le.buffer).toString('base64') };
  }
  const toUnit = det.thresholds ? thresholdColourScale(det.thresholds) : rangeColourScale(r.map);
  return { format: 'png', width, height, data: Buffer.from(overlayScaledPng(r.input!, r.map, { width, height }, toUnit)).toString('base64') };
}

/** Run names from their folders: the folder's own name. */
export function runName(dir: string): string {
  return basename(resolve(dir));
}
