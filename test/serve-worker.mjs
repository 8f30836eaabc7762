// Starts `dcam serve` as users do (a `bin/dcam.mjs` of a checkout or of an installed package), for the
// serve tests, the package test and the serving benchmark. Plain JavaScript: the package test runs
// under plain node.
import { spawn } from 'node:child_process';

/**
 * Spawns `node BIN serve --run RUN --port 0 ...args` and resolves once it reports ready, with the
 * process, its URL, what it has printed so far, and its exit code (a promise). Rejects if it exits
 * first, or is not ready within `timeoutMs`.
 */
export function startServeWorker(bin, run, args = [], { cwd, timeoutMs = 60_000 } = {}) {
  const proc = spawn(process.execPath, [bin, 'serve', '--run', run, '--port', '0', ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const exit = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
  let log = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`dcam serve did not get ready:\n${log}`)), timeoutMs);
    const onData = (b) => {
      log += b.toString();
      const m = /listening on (http:\/\/\S+)/.exec(log);
      if (m && log.includes('dcam serve: ready')) {
        clearTimeout(timer);
        resolve({ proc, url: m[1], exit, log: () => log });
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    exit.then((code) => {
      clearTimeout(timer);
      reject(new Error(`dcam serve exited with ${code}:\n${log}`));
    });
  });
}
