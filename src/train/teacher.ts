/**
 * Where the teacher comes from (Node): the ImageNet ResNet18 conv1..layer3 shipped with the package
 * (pinned by sha256), or a full torchvision / timm file fetched once into the user's cache, verified
 * by its full sha256, written atomically, and reused offline (torch.hub's and Hugging Face's caches too).
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export class TeacherError extends Error {}

const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** The teacher that ships with dcam-webgpu: torchvision's IMAGENET1K_V1 ResNet18, conv1..layer3, BN folded. */
export const SHIPPED_TEACHER = {
  file: join(packageRoot, 'weights', 'resnet18-imagenet-layer1to3.safetensors'),
  sha256: 'd8d204a17379751e5ac2d053ec83e3f7ffd892d783f9454a3c9c8cbed94fb08b',
  description: 'ImageNet ResNet18 (torchvision IMAGENET1K_V1, conv1..layer3, shipped)',
};

export interface TeacherSource {
  url: string;
  /** File name in the cache. */
  file: string;
  sha256: string;
}

/** The full ImageNet ResNet18 files users know; both use torchvision's tensor names. */
export const TEACHER_SOURCES: Record<'torchvision' | 'timm', TeacherSource> = {
  torchvision: {
    url: 'https://download.pytorch.org/models/resnet18-f37072fd.pth',
    file: 'resnet18-f37072fd.pth',
    sha256: 'f37072fd47e89c5e827621c5baffa7500819f7896bbacec160b1a16c560e07ec',
  },
  timm: {
    url: 'https://huggingface.co/timm/resnet18.tv_in1k/resolve/main/model.safetensors',
    file: 'resnet18.tv_in1k.safetensors',
    sha256: '694f673df6520a3158624e8a89af086f59923ee4cd7436fe5bc3bc71d295ad81',
  },
};

export const sha256File = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

/** The shipped file is hashed once per process (11 MB; findTeacher runs several times in one command). */
let shippedVerified = false;

/** The teacher to use: the explicit file, else $DCAM_TEACHER, else the shipped one. */
export function findTeacher(explicit?: string): string {
  const f = explicit ?? process.env.DCAM_TEACHER ?? SHIPPED_TEACHER.file;
  if (!existsSync(f)) {
    if (f === SHIPPED_TEACHER.file) throw new TeacherError(`the shipped teacher ${f} is missing: reinstall dcam-webgpu, or pass --teacher FILE`);
    throw new TeacherError(`teacher file ${f} does not exist`);
  }
  if (f === SHIPPED_TEACHER.file && !shippedVerified) {
    const got = sha256File(f);
    if (got !== SHIPPED_TEACHER.sha256) throw new TeacherError(`the shipped teacher ${f} is damaged: sha256 ${got}, expected ${SHIPPED_TEACHER.sha256}; reinstall dcam-webgpu`);
    shippedVerified = true;
  }
  return f;
}

export const isShippedTeacher = (file: string | null): boolean => !!file && resolve(file) === SHIPPED_TEACHER.file;

/** $XDG_CACHE_HOME/dcam-webgpu (default ~/.cache/dcam-webgpu). */
export function cacheDir(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'dcam-webgpu');
}

/** Files other tools may already have downloaded: torch.hub's checkpoints, Hugging Face's hub cache. */
function otherCaches(src: TeacherSource): string[] {
  const cache = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  const torchHome = process.env.TORCH_HOME || join(cache, 'torch');
  const out = [join(torchHome, 'hub', 'checkpoints', basename(new URL(src.url).pathname))];
  const hfHub = process.env.HF_HUB_CACHE || join(process.env.HF_HOME || join(cache, 'huggingface'), 'hub');
  const m = /huggingface\.co\/([^/]+)\/([^/]+)\/resolve\/[^/]+\/(.+)$/.exec(src.url);
  if (m) {
    const snapshots = join(hfHub, `models--${m[1]}--${m[2]}`, 'snapshots');
    if (existsSync(snapshots)) for (const rev of readdirSync(snapshots)) out.push(join(snapshots, rev, m[3]));
  }
  return out;
}

export interface FetchOptions {
  /** 'torchvision', 'timm', or an http(s) URL. */
  from: string;
  /** Expected sha256 (required for a URL whose file name is not a known one). */
  sha256?: string;
  /** Never download: only the caches. */
  offline?: boolean;
  /** Seconds without a byte before a download is abandoned. */
  stallSeconds?: number;
  onProgress?: (received: number, total: number | null) => void;
}

export interface FetchedTeacher {
  file: string;
  sha256: string;
  origin: 'cache' | 'torch.hub cache' | 'Hugging Face cache' | 'download';
}

function resolveSource(o: FetchOptions): TeacherSource {
  if (o.from === 'torchvision' || o.from === 'timm') {
    const s = TEACHER_SOURCES[o.from];
    return o.sha256 ? { ...s, sha256: o.sha256.toLowerCase() } : s;
  }
  let url: URL;
  try {
    url = new URL(o.from);
  } catch {
    throw new TeacherError(`--from must be torchvision, timm or an http(s) URL, got '${o.from}'`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TeacherError(`--from: only http(s) URLs can be fetched, got '${o.from}'`);
  const name = basename(url.pathname) || 'teacher';
  const known = Object.values(TEACHER_SOURCES).find((s) => s.file === name || basename(new URL(s.url).pathname) === name);
  const sha256 = o.sha256?.toLowerCase() ?? known?.sha256;
  if (!sha256) throw new TeacherError(`${o.from}: unknown file, so its sha256 cannot be checked: pass --sha256 HEX`);
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw new TeacherError(`--sha256 must be 64 hex digits, got '${o.sha256}'`);
  return { url: url.href, file: known && !o.sha256 ? known.file : name, sha256 };
}

/** A cached copy if one verifies; corrupt cached copies in our own cache are removed. */
function fromCaches(src: TeacherSource): FetchedTeacher | null {
  const own = join(cacheDir(), src.file);
  if (existsSync(own)) {
    if (sha256File(own) === src.sha256) return { file: own, sha256: src.sha256, origin: 'cache' };
    rmSync(own, { force: true });
  }
  for (const f of otherCaches(src)) {
    if (existsSync(f) && sha256File(f) === src.sha256) {
      return { file: f, sha256: src.sha256, origin: f.includes(`${join('hub', 'checkpoints')}`) ? 'torch.hub cache' : 'Hugging Face cache' };
    }
  }
  return null;
}

/** Fetches a teacher file into the cache (or finds it there). Never leaves a partial or unverified file. */
export async function fetchTeacher(o: FetchOptions): Promise<FetchedTeacher> {
  const src = resolveSource(o);
  const cached = fromCaches(src);
  if (cached) return cached;
  if (o.offline) throw new TeacherError(`${src.file} is not in the cache (${cacheDir()}) and --offline forbids downloading it`);
  const dir = cacheDir();
  mkdirSync(dir, { recursive: true });
  const dest = join(dir, src.file);
  const tmp = `${dest}.part-${process.pid}`;
  const hash = createHash('sha256');
  let received = 0;
  const stall = new AbortController();
  const stallMs = (o.stallSeconds ?? 30) * 1000;
  let timer = setTimeout(() => stall.abort(), stallMs);
  const fd = openSync(tmp, 'w');
  try {
    let res: Response;
    try {
      res = await fetch(src.url, { signal: stall.signal, redirect: 'follow' });
    } catch (e) {
      throw new TeacherError(`cannot download ${src.url}: ${describeFetchError(e)}`);
    }
    if (!res.ok || !res.body) throw new TeacherError(`cannot download ${src.url}: HTTP ${res.status} ${res.statusText}`);
    const declared = res.headers.get('content-length');
    const total = declared ? Number(declared) : null;
    const reader = res.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        clearTimeout(timer);
        timer = setTimeout(() => stall.abort(), stallMs);
        writeSync(fd, value);
        hash.update(value);
        received += value.length;
        o.onProgress?.(received, total);
      }
    } catch (e) {
      throw new TeacherError(`download of ${src.url} interrupted after ${received} bytes${total ? ` of ${total}` : ''}: ${describeFetchError(e)}`);
    }
    if (total !== null && received !== total) throw new TeacherError(`download of ${src.url} interrupted after ${received} of ${total} bytes`);
    const got = hash.digest('hex');
    if (got !== src.sha256) throw new TeacherError(`${src.url}: sha256 mismatch: got ${got}, expected ${src.sha256}; the file was not kept`);
    closeSync(fd);
    renameSync(tmp, dest);
    return { file: dest, sha256: got, origin: 'download' };
  } finally {
    clearTimeout(timer);
    try {
      closeSync(fd);
    } catch {
      /* already closed */
    }
    rmSync(tmp, { force: true });
  }
}

function describeFetchError(e: unknown): string {
  const err = e as Error & { cause?: Error & { code?: string } };
  if (err.name === 'AbortError') return 'no data for too long (stalled)';
  return err.cause ? `${err.message} (${err.cause.code ?? err.cause.message})` : err.message;
}
