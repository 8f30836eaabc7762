/**
 * Images from plain files, folders and glob patterns, and categories made of them: what a production
 * line has (`photos/ok/*.jpg`, perhaps `photos/ng/` and masks somewhere), without the MVTec AD layout.
 *
 *   --good photos/ok                   one category, named by --category or by the folder ("ok")
 *   --good lineA=a/ok --good lineB=b/ok  a category per name (sources with one name make one category)
 *   --defect lineA=a/ng --masks lineA=a/masks   evaluation: defect images, masks matched by file stem
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, relative, resolve, sep } from 'node:path';
import { globSync, isDynamicPattern } from 'tinyglobby';
import { DatasetError, IMAGE_EXT, type Category, type TestSample } from './mvtec.js';

/** An image and its name relative to the folder or pattern it came from. */
export interface ImageFile {
  path: string;
  rel: string;
}

const isImage = (f: string) => IMAGE_EXT.has(extname(f).toLowerCase());

function walk(dir: string, out: string[]): void {
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.isFile() && isImage(e.name)) out.push(p);
  }
}

/** Files, folders (recursively, images only) and glob patterns to a list of images; each must yield one. */
export function listImages(args: readonly string[]): ImageFile[] {
  const out: ImageFile[] = [];
  for (const a of args) {
    if (existsSync(a) && statSync(a).isDirectory()) {
      const files: string[] = [];
      walk(a, files);
      if (files.length === 0) throw new DatasetError(`folder ${a} holds no images (${[...IMAGE_EXT].join(' ')})`);
      for (const f of files) out.push({ path: f, rel: relative(a, f) });
    } else if (existsSync(a)) {
      out.push({ path: a, rel: a.split(sep).pop()! });
    } else if (isDynamicPattern(a)) {
      const files = globSync(a, { onlyFiles: true }).filter(isImage).sort();
      if (files.length === 0) throw new DatasetError(`pattern '${a}' matches no images`);
      for (const f of files) out.push({ path: f, rel: f.split(/[\\/]/).pop()! });
    } else {
      throw new DatasetError(`no such file or folder: ${a}`);
    }
  }
  return out;
}

/** A source as given: `NAME=PATH` names its category, a bare PATH does not. */
export function parseSource(s: string): { name: string | null; path: string } {
  const m = /^([A-Za-z0-9_.-]+)=(.+)$/.exec(s);
  return m && !existsSync(s) ? { name: m[1], path: m[2] } : { name: null, path: s };
}

/** The name a bare source gives its category: a folder's own name, a file's or pattern's folder's. */
export function sourceName(path: string): string {
  const plain = isDynamicPattern(path) ? path.slice(0, path.search(/[*?[{]/)) : path;
  const dir = existsSync(plain) && statSync(plain).isDirectory() ? plain : dirname(plain);
  return basename(resolve(dir)) || 'images';
}

/**
 * Groups sources by category: `NAME=PATH` names its own; a bare one takes `fallback` (--category) or its
 * folder's name. Paths are made absolute (a run records them).
 */
export function groupSources(sources: readonly string[], fallback?: string): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  for (const s of sources) {
    const { name, path } = parseSource(s);
    const category = name ?? fallback ?? sourceName(path);
    const abs = isDynamicPattern(path) ? path : resolve(path);
    groups.set(category, [...(groups.get(category) ?? []), abs]);
  }
  return groups;
}

/** The mask of each image stem in a folder: `x.png` or `x_mask.png` (any image format). */
function masksByStem(dir: string): Map<string, string> {
  const byStem = new Map<string, string>();
  for (const f of listImages([dir])) byStem.set(basename(f.path, extname(f.path)).replace(/_mask$/, ''), f.path);
  return byStem;
}

/**
 * A category from folders: its good images (training, or the good test images with `defect`), defect
 * images (evaluation) and, for pixel metrics, masks matched by file stem; without masks it is
 * classification-only. Every defect image must find its mask when masks are given.
 */
export function folderCategory(name: string, o: { good: readonly string[]; defect?: readonly string[]; masks?: readonly string[] }): Category {
  const good = listImages(o.good).map((f) => f.path);
  const test: TestSample[] = [];
  if (o.defect) {
    const masks = new Map<string, string>();
    for (const d of o.masks ?? []) for (const [stem, p] of masksByStem(d)) masks.set(stem, p);
    for (const path of good) test.push({ path, category: name, defect: 'good', label: 0, maskPath: null });
    for (const f of listImages(o.defect)) {
      const stem = basename(f.path, extname(f.path));
      const maskPath = masks.get(stem) ?? null;
      if (o.masks && !maskPath) throw new DatasetError(`no mask for defect image ${f.path} in ${o.masks.join(', ')} (looked for ${stem}.* and ${stem}_mask.*)`);
      test.push({ path: f.path, category: name, defect: basename(dirname(f.path)), label: 1, maskPath });
    }
  }
  return { name, dir: o.good[0] ?? '.', train: o.defect ? [] : good, test };
}
