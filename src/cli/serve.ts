/**
 * `dcam serve`: loads the runs, listens, reports ready after one warm map per run, and on SIGTERM or
 * SIGINT stops accepting, answers what is in flight and exits 0.
 */
import { loadDetector } from '../node.js';
import { InspectionServer, runName, type ServedRun, type ServeOptions } from '../serve/server.js';
import { trainingInProgress } from '../train/run.js';
import { tilingOf, withDevice, type TilingFlags } from './common.js';

/** The command's flags: the server's options, with the body limit in MB and the runs and teacher to load. */
export type ServeFlags = Omit<ServeOptions, 'bodyLimit' | 'token'> & {
  run: string[];
  maxBodyMb: number;
  token?: string;
  teacher?: string;
  force?: boolean;
} & TilingFlags;

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export async function runServe(f: ServeFlags): Promise<void> {
  const token = f.token ?? process.env.DCAM_TOKEN ?? null;
  if (!LOOPBACK.has(f.host) && !token) console.error(`dcam serve: listening on ${f.host} without --token: anyone who reaches this port can use the models`);
  await withDevice(async (rt) => {
    const runs: ServedRun[] = [];
    try {
      for (const dir of f.run) {
        const busy = trainingInProgress(dir);
        if (busy) console.error(`dcam: WARNING: ${busy}: serving its latest checkpoint, which stays loaded (restart the service when the training has finished)`);
        runs.push({ name: runName(dir), dir, detector: await loadDetector({ run: dir, runtime: rt, teacher: f.teacher, force: f.force, tiling: tilingOf(f) }) });
      }
    } catch (e) {
      for (const r of runs) r.detector.dispose();
      throw e;
    }
    const { host, port, maxBatch, maxWaitMs, queueLimit, timeoutMs, maxPixels, decodeWorkers, decodeTimeoutMs, decodeHeapMb } = f;
    const server = new InspectionServer(rt, runs, {
      host, port, maxBatch, maxWaitMs, queueLimit, timeoutMs, maxPixels, bodyLimit: Math.round(f.maxBodyMb * 1024 * 1024), token, decodeWorkers, decodeTimeoutMs, decodeHeapMb,
    });
    const stop = new Promise<string>((resolve) => {
      process.once('SIGTERM', () => resolve('SIGTERM'));
      process.once('SIGINT', () => resolve('SIGINT'));
    });
    try {
      const address = await server.listen();
      console.log(`dcam serve: listening on ${address} (worker ${server.worker}; runs: ${runs.map((r) => `${r.name} ${r.detector.size}px`).join(', ')})`);
      await server.warmUp();
      console.log('dcam serve: ready');
      const signal = await stop;
      console.log(`dcam serve: ${signal}: finishing the requests in flight, then exiting`);
    } finally {
      await server.close();
    }
    console.log('dcam serve: stopped');
  });
}
