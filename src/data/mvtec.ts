/**
 * The MVTec AD folder layout: <root>/<category>/train/good/*.png, test/<defect>/*.png and
 * ground_truth/<defect>/<name>_mask.png. Categories are discovered on disk; every problem (missing folder,
 * empty category, defect image without a mask) is an error naming the path. A category without a
 * ground_truth folder is classification-only: its defect images carry no mask (pixel metrics n/a);
 * training never looks at the test folders.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { decodeGray, decodeImage } from './image.js';
import { resizeNearest, toInput } from './resize.js';

export class DatasetError extends Error {}

export interface TestSample {
  path: string;
  category: string;
  defect: string;
  /** 1 for a defect image, 0 for a good one. */
  label: 0 | 1;
  maskPath: string | null;
}

export interface Category {
  name: string;
  dir: string;
  train: string[];
  test: TestSample[];
}

export const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff']);

function listImages(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => IMAGE_EXT.has(extname(f).toLowerCase()))
    .sort()
    .map((f) => join(dir, f));
}

const isDir = (p: string) => existsSync(p) && statSync(p).isDirectory();

/** One data folder, or several whose categories are used together (e.g. MVTec AD and KolektorSDD). */
export type DataRoots = string | readonly string[];

export const dataRootList = (roots: DataRoots): string[] => (typeof roots === 'string' ? [roots] : [...roots]);

/**
 * The categories under one or several data folders (every one, or the `only` ones). A category name
 * must be unique across the folders: it names the category in runs, metrics and reports.
 */
export function discoverCategories(roots: DataRoots, only: readonly string[] = []): Category[] {
  const list = dataRootList(roots);
  if (list.length === 0) throw new DatasetError('no data folder given');
  const where = new Map<string, string>();
  for (const root of list) {
    if (!existsSync(root)) throw new DatasetError(`data folder ${root} does not exist`);
    if (!isDir(root)) throw new DatasetError(`data folder ${root} is a file, not a folder`);
    const found = readdirSync(root).filter((d) => isDir(join(root, d, 'train'))).sort();
    if (found.length === 0) throw new DatasetError(`no MVTec-style categories (folders with train/good) under ${root}`);
    for (const name of found) {
      if (where.has(name)) throw new DatasetError(`category '${name}' is in two data folders (${where.get(name)} and ${root}): names must be unique`);
      where.set(name, root);
    }
  }
  for (const c of only) {
    if (!where.has(c)) throw new DatasetError(`category '${c}' not found under ${list.join(', ')} (found: ${[...where.keys()].join(', ')})`);
  }
  return (only.length ? [...only] : [...where.keys()]).map((name) => readCategory(where.get(name)!, name));
}

function readCategory(root: string, name: string): Category {
  const dir = join(root, name);
  const train = listImages(join(dir, 'train', 'good'));
  if (train.length === 0) throw new DatasetError(`category '${name}' has no training images in ${join(dir, 'train', 'good')}`);
  const test: TestSample[] = [];
  const testDir = join(dir, 'test');
  const defects = isDir(testDir) ? readdirSync(testDir).filter((d) => isDir(join(testDir, d))).sort() : [];
  const withMasks = isDir(join(dir, 'ground_truth'));
  for (const defect of defects) {
    for (const path of listImages(join(testDir, defect))) {
      if (defect === 'good') {
        test.push({ path, category: name, defect, label: 0, maskPath: null });
        continue;
      }
      if (!withMasks) {
        test.push({ path, category: name, defect, label: 1, maskPath: null });
        continue;
      }
      const maskPath = join(dir, 'ground_truth', defect, `${basename(path, extname(path))}_mask.png`);
      if (!existsSync(maskPath)) throw new DatasetError(`missing ground truth ${maskPath} for defect image ${path} (a category without any masks has no ground_truth folder)`);
      test.push({ path, category: name, defect, label: 1, maskPath });
    }
  }
  return { name, dir, train, test };
}

/** An image file's bytes, with a clear error for one that cannot be read. */
export function readImageFile(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new DatasetError(`cannot read ${path}: ${(e as Error).message}`);
  }
}

/** Decoded, PIL-resized, ImageNet-normalised CHW float32 image (a training image). */
export function loadImage(path: string, size: number, out = new Float32Array(3 * size * size), offset = 0): Float32Array {
  return toInput(decodeImage(readImageFile(path), path), size, out, offset);
}

/** Ground-truth mask at width x height (nearest; height default width), 1 where the mask is > 127; all zeros without a mask. */
export function loadMask(path: string | null, width: number, height = width): Uint8Array {
  if (!path) return new Uint8Array(width * height);
  const m = resizeNearest(decodeGray(readFileSync(path), path), width, height);
  return m.map((v) => (v > 127 ? 1 : 0));
}
