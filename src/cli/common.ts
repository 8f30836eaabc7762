/** What every `dcam` subcommand shares: the device, progress bars, option parsers. */
import { SingleBar, Presets } from 'cli-progress';
import { InvalidArgumentError, type Command } from 'commander';
import { createDevice, describeAdapter } from '../graph/device.js';
import type { Runtime } from '../graph/runtime.js';
import { MAX_SIZE, MIN_SIZE } from '../train/run-config.js';

export const int = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer, got '${v}'`);
  return n;
};
export const nonNegativeInt = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer, got '${v}'`);
  return n;
};
export const num = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative number, got '${v}'`);
  return n;
};
/**
 * Image size: at least 32 (layer3 is then 2 x 2) and a multiple of 16, so that the layer1..3 feature grids
 * (S/4, S/8, S/16) tile the image exactly and their upsampled maps line up; at most MAX_SIZE.
 */
export const sizeArg = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < MIN_SIZE || n > MAX_SIZE || n % 16 !== 0) {
    throw new InvalidArgumentError(`${name} must be a multiple of 16 from ${MIN_SIZE} to ${MAX_SIZE} (the ResNet18 trunk downsamples by 16), got '${v}'`);
  }
  return n;
};
export const fraction = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n >= 1) throw new InvalidArgumentError(`${name} must be a number in [0, 1), got '${v}'`);
  return n;
};
export const portArg = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`--port must be an integer from 0 to 65535, got ${v}`);
  return n;
};
export const collect = (v: string, prev: string[] = []) => [...prev, v];
/** Repeatable and comma-separated: `--category a,b --category c`. */
export const collectList = (v: string, prev: string[] = []) => [...prev, ...v.split(',').map((s) => s.trim()).filter(Boolean)];

/**
 * A progress bar on stderr. Callers stop it in a `finally`: a bar left running keeps its redraw timer,
 * and with it the process, alive.
 */
export function progress(label: string): SingleBar {
  return new SingleBar(
    { format: `${label} [{bar}] {percentage}% | {value}/{total} | ETA {eta_formatted} | {info}`, hideCursor: true, noTTYOutput: true, notTTYSchedule: 5000, etaBuffer: 20 },
    Presets.shades_classic,
  );
}

export async function withDevice<T>(fn: (rt: Runtime) => Promise<T>): Promise<T> {
  const rt = await createDevice();
  console.error(`WebGPU adapter: ${describeAdapter(rt)}`);
  try {
    return await fn(rt);
  } finally {
    rt.destroy();
  }
}

/** Runs `fn` with a progress bar that is stopped whatever happens. */
export async function withProgress<T>(label: string, fn: (bar: SingleBar) => Promise<T>): Promise<T> {
  const bar = progress(label);
  try {
    return await fn(bar);
  } finally {
    bar.stop();
  }
}

/** `--tile`, `--stride`, `--scale` as given (a run's own tiling is applied without them; given, they must agree). */
export interface TilingFlags { tile?: number; stride?: number; scale?: number }

/** The tiling flags of eval, infer, calibrate and serve: checks against the run's, which applies by itself. */
export function tilingChecks(cmd: Command, what = "must be the run's (applied without it); a run tiled otherwise is refused"): Command {
  return cmd
    .option('--tile <px>', `tile size: ${what}`, sizeArg('--tile'))
    .option('--stride <px>', `tile stride: ${what}`, int('--stride'))
    .option('--scale <x>', `downscale before tiling: ${what}`, num('--scale'));
}

export const tilingOf = (f: TilingFlags): TilingFlags => ({ tile: f.tile, stride: f.stride, scale: f.scale });
