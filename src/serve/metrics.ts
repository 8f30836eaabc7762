/**
 * Prometheus metrics of the inspection service, through prom-client: requests by run and status, request
 * latency, GPU batch sizes and times, queue depth, GPU memory held by the engine, and the process's own
 * (CPU, memory, event loop lag).
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Runtime } from '../graph/runtime.js';

export class ServeMetrics {
  private readonly registry = new Registry();
  private readonly requests: Counter<'run' | 'status'>;
  private readonly latency: Histogram<'run'>;
  private readonly batchSize: Histogram<'run'>;
  private readonly batchSeconds: Histogram<'run'>;

  constructor(runtime: Runtime, queueDepths: () => Array<[string, number]>, maxBatch: number) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'dcam_' });
    this.requests = new Counter({ name: 'dcam_requests_total', help: 'Inspection requests answered, by run and HTTP status', labelNames: ['run', 'status'], registers });
    this.latency = new Histogram({
      name: 'dcam_request_duration_seconds',
      help: 'Time from a request\'s arrival to its answer',
      labelNames: ['run'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    const sizes = [...new Set([1, 2, 4, 8, 16, 32, maxBatch])].filter((b) => b <= maxBatch).sort((a, b) => a - b);
    this.batchSize = new Histogram({ name: 'dcam_batch_size', help: 'Images per GPU batch', labelNames: ['run'], buckets: sizes, registers });
    this.batchSeconds = new Histogram({
      name: 'dcam_batch_duration_seconds',
      help: 'GPU time of a batch, wall clock (decode excluded)',
      labelNames: ['run'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    new Gauge({
      name: 'dcam_queue_depth',
      help: 'Requests waiting for or in a GPU batch',
      labelNames: ['run'],
      registers,
      collect() {
        for (const [run, depth] of queueDepths()) this.set({ run }, depth);
      },
    });
    new Gauge({
      name: 'dcam_gpu_memory_bytes',
      help: 'GPU buffer memory held by the engine: live (in tensors) and pooled (kept for reuse)',
      labelNames: ['kind'],
      registers,
      collect() {
        const m = runtime.memory();
        this.set({ kind: 'live' }, m.liveBytes);
        this.set({ kind: 'pooled' }, m.pooledBytes);
      },
    });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  request(run: string, status: number, ms: number): void {
    this.requests.inc({ run, status: String(status) });
    this.latency.observe({ run }, ms / 1000);
  }

  batch(run: string, size: number, ms: number): void {
    this.batchSize.observe({ run }, size);
    this.batchSeconds.observe({ run }, ms / 1000);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
