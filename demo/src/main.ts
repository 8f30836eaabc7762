/** The demo page: wires the DOM to a DemoSession (engine side in session.ts). */
import { imageRgb, overlayRgb } from 'dcam-webgpu';
import { DemoError, DemoSession, SHIPPED_TEACHER_URL, type Inspection } from './session.js';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const status = $('status');
const results: Inspection[] = [];
let session: DemoSession | null = null;

/** For tests and the console: the session and the inspected results. */
(window as unknown as { dcamDemo: unknown }).dcamDemo = {
  get session() {
    return session;
  },
  results,
  get live() {
    return { frames: live.frames, dropped: live.dropped, running: live.running, busy: live.busy, gpuBytesAfterFrame: live.gpuBytesAfterFrame };
  },
};

function setStatus(text: string, state: 'starting' | 'busy' | 'ready' | 'error'): void {
  status.textContent = text;
  status.dataset.state = state;
}

function readyStatus(): void {
  if (!session) return;
  const mib = (session.gpuBytes() / 2 ** 20).toFixed(1);
  setStatus(`WebGPU: ${session.adapter} · ${session.hasTeacher ? 'teacher loaded' : 'no teacher'} · ${session.hasModel ? 'model ready' : 'no model'} · GPU memory ${mib} MiB`, 'ready');
  $('model-info').textContent = session.hasModel ? `Model: ${session.modelSource}` : session.hasTeacher ? 'Teacher loaded; load a run or train one.' : 'No model loaded.';
}

/** Runs a UI action; a failure becomes a message, never an uncaught error. */
async function guard(what: string, f: () => Promise<void>, messageEl: HTMLElement = $('inspect-message')): Promise<void> {
  try {
    setStatus(`${what}…`, 'busy');
    await f();
    readyStatus();
  } catch (e) {
    const msg = e instanceof DemoError ? e.message : `${what} failed: ${(e as Error).message}`;
    messageEl.textContent = msg;
    messageEl.classList.add('error');
    setStatus(msg, 'error');
    console.error(e);
  }
}

const fileBytes = async (f: File) => new Uint8Array(await f.arrayBuffer());

async function fetchBytes(url: string): Promise<Uint8Array> {
  const r = await fetch(url);
  if (!r.ok) throw new DemoError(`${url}: ${r.status} ${r.statusText}`);
  return new Uint8Array(await r.arrayBuffer());
}

// ---- model --------------------------------------------------------------------------------------------

async function loadTeacherBytes(bytes: Uint8Array, name: string): Promise<void> {
  await session!.loadTeacher(bytes, name);
  clearResults();
}

$<HTMLInputElement>('teacher-input').addEventListener('change', (ev) => {
  const f = (ev.target as HTMLInputElement).files?.[0];
  if (f) void guard('loading the teacher', async () => loadTeacherBytes(await fileBytes(f), f.name), $('model-info'));
});
$('teacher-url-load').addEventListener('click', () => {
  const url = $<HTMLInputElement>('teacher-url').value.trim();
  if (url) void guard('loading the teacher', async () => loadTeacherBytes(await fetchBytes(url), url.replace(/^.*\//, '')), $('model-info'));
});
$<HTMLInputElement>('run-input').addEventListener('change', (ev) => {
  const files = [...((ev.target as HTMLInputElement).files ?? [])];
  if (files.length)
    void guard('loading the run', async () => {
      await session!.loadRun(new Map(await Promise.all(files.map(async (f) => [f.name, await fileBytes(f)] as [string, Uint8Array]))));
      clearResults();
      setTrainButtons(false);
    }, $('model-info'));
});

/**
 * At start: the teacher from ?teacher=URL, else the ImageNet teacher shipped with the page; a run from
 * ?run=URL-of-run-folder/ (the end-to-end test uses both).
 */
async function loadFromQuery(): Promise<void> {
  const q = new URLSearchParams(location.search);
  const teacher = q.get('teacher') ?? SHIPPED_TEACHER_URL;
  const run = q.get('run');
  await loadTeacherBytes(await fetchBytes(teacher), q.get('teacher') ? teacher.replace(/^.*\//, '') : 'the shipped ImageNet ResNet18');
  if (run) {
    const base = run.endsWith('/') ? run : `${run}/`;
    const files = new Map<string, Uint8Array>([
      ['config.json', await fetchBytes(`${base}config.json`)],
      ['student.safetensors', await fetchBytes(`${base}student.safetensors`)],
    ]);
    await session!.loadRun(files);
  }
}

// ---- training -------------------------------------------------------------------------------------------

const trainStatus = $('train-status');

function setTrainButtons(running: boolean): void {
  $<HTMLButtonElement>('train-start').disabled = running;
  $<HTMLButtonElement>('train-stop').disabled = !running;
  const p = session?.trainingProgress;
  $<HTMLButtonElement>('train-continue').disabled = running || !p || p.step >= p.totalSteps;
  $<HTMLButtonElement>('train-download').disabled = running || !session?.losses.length;
}

function drawLossChart(losses: readonly number[]): void {
  const c = $<HTMLCanvasElement>('loss-chart');
  const g = c.getContext('2d')!;
  g.clearRect(0, 0, c.width, c.height);
  if (losses.length < 1) return;
  const lo = Math.min(...losses);
  const hi = Math.max(...losses);
  const pad = 16;
  const x = (i: number) => pad + ((c.width - 2 * pad) * i) / Math.max(1, losses.length - 1);
  const y = (v: number) => c.height - pad - ((c.height - 2 * pad) * (v - lo)) / (hi - lo || 1);
  g.strokeStyle = '#4aa8ff';
  g.lineWidth = 2;
  g.beginPath();
  losses.forEach((v, i) => (i ? g.lineTo(x(i), y(v)) : g.moveTo(x(i), y(v))));
  g.stroke();
  g.fillStyle = '#8b98a5';
  g.font = '11px system-ui';
  g.fillText(`loss ${losses[losses.length - 1].toFixed(4)} (max ${hi.toFixed(3)}, min ${lo.toFixed(3)})`, pad, 12);
}

async function runTraining(fresh: boolean): Promise<void> {
  const s = session!;
  let images: Array<{ name: string; bytes: Uint8Array }> | null = null;
  if (fresh) {
    const files = [...($<HTMLInputElement>('train-input').files ?? [])];
    images = await Promise.all(files.map(async (f) => ({ name: f.name, bytes: await fileBytes(f) })));
    clearResults();
  }
  const options = {
    method: $<HTMLSelectElement>('train-method').value as 'stfpm' | 'dcam',
    size: Number($<HTMLSelectElement>('train-size').value),
    epochs: Number($<HTMLInputElement>('train-epochs').value),
    batch: Number($<HTMLInputElement>('train-batch').value),
  };
  setTrainButtons(true);
  trainStatus.dataset.state = 'running';
  trainStatus.classList.remove('error');
  try {
    await s.train(images, fresh ? options : null, (r) => {
      $<HTMLProgressElement>('train-progress').value = r.step / r.totalSteps;
      trainStatus.textContent = `step ${r.step}/${r.totalSteps} · epoch ${r.epoch} · loss ${r.loss.toFixed(4)} · ${r.imagesPerSec.toFixed(1)} images/s`;
      drawLossChart(s.losses);
    });
    const p = s.trainingProgress!;
    const stopped = p.step < p.totalSteps;
    trainStatus.dataset.state = stopped ? 'stopped' : 'done';
    trainStatus.textContent += stopped ? ' · stopped (Continue resumes)' : ' · done';
  } catch (e) {
    trainStatus.dataset.state = 'error';
    throw e;
  } finally {
    setTrainButtons(false);
  }
}

$('train-start').addEventListener('click', () => void guard('training', () => runTraining(true), trainStatus));
$('train-continue').addEventListener('click', () => void guard('training', () => runTraining(false), trainStatus));
$('train-stop').addEventListener('click', () => session?.stop());
$('train-download').addEventListener('click', () =>
  void guard('exporting the run', async () => {
    const zip = await session!.exportRun();
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([zip as unknown as BlobPart], { type: 'application/zip' }));
    a.download = 'dcam-run.zip';
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  }, trainStatus),
);

// ---- inspection -----------------------------------------------------------------------------------------

const threshold = $<HTMLInputElement>('threshold');

function clearResults(): void {
  results.length = 0;
  $('results').replaceChildren();
  $('inspect-message').textContent = '';
}

/** The colour scale and the slider's range span every inspected map, so cards are comparable. */
function scale(): { lo: number; hi: number } {
  let lo = Infinity;
  let hi = -Infinity;
  for (const r of results) {
    for (const v of r.map) if (v < lo) lo = v;
    if (r.score > hi) hi = r.score;
  }
  return { lo, hi };
}

function toCanvas(rgb: Uint8Array, width: number, height = width): HTMLCanvasElement {
  const c = document.createElement('canvas');
  [c.width, c.height] = [width, height];
  const img = new ImageData(width, height);
  for (let i = 0; i < width * height; i++) {
    img.data.set([rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2], 255], 4 * i);
  }
  c.getContext('2d')!.putImageData(img, 0, 0);
  return c;
}

/** Heatmap overlay with the regions above the threshold outlined. */
function overlayCanvas(r: Inspection, lo: number, hi: number, thr: number): HTMLCanvasElement {
  const { width: W, height: H } = r;
  const rgb = overlayRgb(r.input, r.map, { width: W, height: H }, lo, hi);
  const above = (x: number, y: number) => x >= 0 && y >= 0 && x < W && y < H && r.map[y * W + x] >= thr;
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      if (above(x, y) && !(above(x - 1, y) && above(x + 1, y) && above(x, y - 1) && above(x, y + 1))) rgb.set([255, 255, 255], 3 * (y * W + x));
    }
  return toCanvas(rgb, W, H);
}

function renderResults(): void {
  const { lo, hi } = scale();
  if (!Number.isFinite(lo)) return;
  const runThreshold = session?.thresholds?.image;
  threshold.min = String(runThreshold !== undefined ? Math.min(lo, runThreshold) : lo);
  threshold.max = String(runThreshold !== undefined ? Math.max(hi, runThreshold) : hi);
  threshold.step = 'any'; // the run's threshold exactly, not snapped to a grid
  const thr = Number(threshold.value);
  $('threshold-value').textContent = thr.toFixed(4);
  const order = $<HTMLSelectElement>('sort').value;
  const sorted = [...results].sort((a, b) => (order === 'name' ? a.name.localeCompare(b.name) : order === 'score-asc' ? a.score - b.score : b.score - a.score));
  $('results').replaceChildren(
    ...sorted.map((r) => {
      const card = document.createElement('div');
      card.className = `result-card${r.score >= thr ? ' anomalous' : ''}`;
      card.dataset.name = r.name;
      card.dataset.score = String(r.score);
      card.dataset.ms = r.ms.toFixed(1);
      if (r.label) card.dataset.label = r.label;
      const pair = document.createElement('div');
      pair.className = 'pair';
      pair.append(toCanvas(imageRgb(r.input, { width: r.width, height: r.height }), r.width, r.height), overlayCanvas(r, lo, hi, thr));
      const meta = document.createElement('div');
      meta.className = 'meta';
      meta.innerHTML = `<span class="name"></span><span class="score"></span><span class="ms"></span>`;
      meta.querySelector('.name')!.textContent = r.name;
      meta.querySelector('.score')!.textContent = r.label ? `${r.label === 'defect' ? 'DEFECT' : 'OK'} · ${r.normalized!.toFixed(2)} (score ${r.score.toFixed(4)})` : `score ${r.score.toFixed(4)}`;
      meta.querySelector('.ms')!.textContent = `${r.ms.toFixed(0)} ms`;
      card.append(pair, meta);
      return card;
    }),
  );
}

async function inspectFiles(files: File[]): Promise<void> {
  const msg = $('inspect-message');
  msg.classList.remove('error');
  const problems: string[] = [];
  const firstBatch = results.length === 0;
  for (const f of files) {
    try {
      results.push(await session!.inspect(await fileBytes(f), f.name));
    } catch (e) {
      if (e instanceof DemoError) problems.push(e.message);
      else throw e;
    }
  }
  if (firstBatch && results.length) {
    // the run's own threshold when it has one (dcam eval / calibrate), else 60% up the inspected range
    const { lo, hi } = scale();
    const t = session!.thresholds?.image;
    threshold.min = String(t !== undefined ? Math.min(lo, t) : lo);
    threshold.max = String(t !== undefined ? Math.max(hi, t) : hi);
    threshold.value = String(t ?? lo + 0.6 * (hi - lo));
  }
  renderResults();
  msg.textContent = problems.join(' · ');
  if (problems.length) msg.classList.add('error');
}

$<HTMLInputElement>('inspect-input').addEventListener('change', (ev) => {
  const files = [...((ev.target as HTMLInputElement).files ?? [])];
  if (files.length) void guard('inspecting', () => inspectFiles(files));
});
const drop = $('drop-zone');
drop.addEventListener('dragover', (ev) => {
  ev.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (ev) => {
  ev.preventDefault();
  drop.classList.remove('over');
  const files = [...(ev.dataTransfer?.files ?? [])];
  if (files.length) void guard('inspecting', () => inspectFiles(files));
});
threshold.addEventListener('input', renderResults);
$('sort').addEventListener('change', renderResults);
$('clear').addEventListener('click', clearResults);

// A webcam frame, where the browser offers a camera.
const hasCamera = typeof navigator.mediaDevices?.getUserMedia === 'function';
if (hasCamera) {
  const button = $<HTMLButtonElement>('webcam');
  button.hidden = false;
  button.addEventListener('click', () =>
    void guard('capturing a webcam frame', async () => {
      const video = $<HTMLVideoElement>('webcam-video');
      const stream = await navigator.mediaDevices.getUserMedia({ video: true });
      try {
        video.srcObject = stream;
        await video.play();
        const c = document.createElement('canvas');
        c.width = video.videoWidth;
        c.height = video.videoHeight;
        const g = c.getContext('2d')!;
        g.drawImage(video, 0, 0);
        const frame = g.getImageData(0, 0, c.width, c.height);
        const s = session!;
        results.push(await s.inspectFrame(frame.data, c.width, c.height, `webcam ${new Date().toLocaleTimeString()}`));
        renderResults();
      } finally {
        for (const t of stream.getTracks()) t.stop();
      }
    }),
  );
}

// ---- live camera ----------------------------------------------------------------------------------------

/**
 * Continuous inspection of the camera stream: each animation frame offers the current video frame; it is
 * inspected if the GPU is free and dropped otherwise (never queued, so latency stays one inspection).
 * Shows the heatmap overlay, the verdict, inspections per second, the last latency and the drops.
 */
class LiveView {
  private stream: MediaStream | null = null;
  /** An inspection is on the GPU (a new frame is dropped meanwhile). */
  busy = false;
  private times: number[] = [];
  frames = 0;
  dropped = 0;
  /** Live GPU bytes right after the last frame's inspection ended: flat from frame to frame unless something leaks
   * (sampled mid-inspection it would also count that frame's input and map). */
  gpuBytesAfterFrame = 0;

  get running(): boolean {
    return this.stream !== null;
  }

  async start(): Promise<void> {
    const video = $<HTMLVideoElement>('webcam-video');
    this.stream = await navigator.mediaDevices.getUserMedia({ video: true });
    video.srcObject = this.stream;
    await video.play();
    [this.frames, this.dropped, this.times] = [0, 0, []];
    $('live-view').hidden = false;
    $('live').textContent = 'Stop live';
    const grab = document.createElement('canvas');
    const tick = () => {
      if (!this.stream) return;
      if (this.busy) this.dropped++;
      else if (video.videoWidth > 0) void this.inspect(video, grab);
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  }

  private async inspect(video: HTMLVideoElement, grab: HTMLCanvasElement): Promise<void> {
    const s = session;
    if (!s?.hasModel) return;
    this.busy = true;
    try {
      [grab.width, grab.height] = [video.videoWidth, video.videoHeight];
      const g = grab.getContext('2d', { willReadFrequently: true })!;
      g.drawImage(video, 0, 0);
      const frame = g.getImageData(0, 0, grab.width, grab.height);
      const r = await s.inspectFrame(frame.data, grab.width, grab.height, 'live');
      this.gpuBytesAfterFrame = s.gpuBytes();
      if (!this.stream) return;
      const now = performance.now();
      this.times = [...this.times.filter((t) => now - t < 1000), now];
      this.frames++;
      const t = s.thresholds;
      const lo = t ? t.mapMin : Math.min(...r.map);
      const hi = t ? t.max : r.score;
      const canvas = $<HTMLCanvasElement>('live-canvas');
      const rgb = overlayRgb(r.input, r.map, { width: r.width, height: r.height }, lo, hi);
      [canvas.width, canvas.height] = [r.width, r.height];
      const img = new ImageData(r.width, r.height);
      for (let i = 0; i < r.width * r.height; i++) img.data.set([rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2], 255], 4 * i);
      canvas.getContext('2d')!.putImageData(img, 0, 0);
      const verdict = $('live-verdict');
      verdict.textContent = r.label ? `${r.label === 'defect' ? 'DEFECT' : 'OK'} ${r.normalized!.toFixed(2)}` : `score ${r.score.toFixed(4)}`;
      verdict.dataset.label = r.label ?? '';
      $('live-fps').textContent = `${this.times.length} fps`;
      $('live-latency').textContent = `${r.ms.toFixed(0)} ms`;
      $('live-dropped').textContent = `${this.dropped} dropped`;
      $('live-view').dataset.frames = String(this.frames);
    } finally {
      this.busy = false;
    }
  }

  stop(): void {
    for (const t of this.stream?.getTracks() ?? []) t.stop();
    this.stream = null;
    $('live').textContent = 'Live camera';
  }
}

const live = new LiveView();
if (hasCamera) {
  const button = $<HTMLButtonElement>('live');
  button.hidden = false;
  button.addEventListener('click', () => {
    if (live.running) live.stop();
    else void guard('starting the live camera', () => live.start());
  });
}

// ---- start ----------------------------------------------------------------------------------------------

try {
  session = await DemoSession.create();
  readyStatus();
  await guard('loading the teacher and run', loadFromQuery, $('model-info'));
} catch (e) {
  const box = $('no-webgpu');
  box.hidden = false;
  box.textContent = (e as Error).message;
  setStatus('WebGPU is not available', 'error');
}
