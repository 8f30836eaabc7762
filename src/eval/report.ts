/** metrics.json and a self-contained report.html: the table, ROC and PRO curves (SVG), heatmap overlays. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EvalResult } from './evaluate.js';

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
const fmt = (v: number) => (Number.isFinite(v) ? v.toFixed(4) : 'n/a');

function plot(title: string, series: Record<string, Array<[number, number]>>, xMax: number, xLabel: string, yLabel: string): string {
  const W = 320;
  const H = 240;
  const m = 36;
  const colors = ['#d62728', '#1f77b4', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];
  const sx = (x: number) => m + ((W - 2 * m) * x) / xMax;
  const sy = (y: number) => H - m - (H - 2 * m) * y;
  const lines = Object.entries(series).map(([name, pts], i) => {
    const d = pts.map(([x, y], k) => `${k ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join('');
    return `<path d="${d}" fill="none" stroke="${colors[i % colors.length]}" stroke-width="1.5"/><text x="${W - m - 4}" y="${m + 14 * i + 10}" text-anchor="end" font-size="11" fill="${colors[i % colors.length]}">${esc(name)}</text>`;
  });
  return `<svg width="${W}" height="${H}" xmlns="http://www.w3.org/2000/svg"><rect x="${m}" y="${m}" width="${W - 2 * m}" height="${H - 2 * m}" fill="none" stroke="#999"/>
<text x="${W / 2}" y="16" text-anchor="middle" font-size="13">${esc(title)}</text>
<text x="${W / 2}" y="${H - 6}" text-anchor="middle" font-size="11">${esc(xLabel)} (0 to ${xMax})</text>
<text x="10" y="${H / 2}" font-size="11" transform="rotate(-90 10 ${H / 2})" text-anchor="middle">${esc(yLabel)}</text>${lines.join('')}</svg>`;
}

export function writeReport(dir: string, r: EvalResult, meta: Record<string, unknown>): { metrics: string; report: string } {
  const metricsPath = join(dir, 'metrics.json');
  writeFileSync(metricsPath, JSON.stringify({ ...meta, categories: r.categories, mean: r.mean, images: r.images.map(({ overlay, ...rest }) => ({ ...rest, overlay })) }, null, 2));
  const rows = r.categories
    .map((c) => `<tr><td>${esc(c.category)}</td><td>${c.images}</td><td>${c.defects}</td><td>${fmt(c.imageAUROC)}</td><td>${fmt(c.pixelAUROC)}</td><td>${fmt(c.auPRO)}</td><td>${fmt(c.legacyPRO)}</td></tr>`)
    .join('\n');
  const sorted = [...r.images].sort((a, b) => b.score - a.score);
  const card = (s: (typeof sorted)[number]) =>
    s.overlay ? `<figure><img src="${esc(s.overlay)}" width="160"><figcaption>${esc(s.category)}/${esc(s.defect)} ${s.score.toFixed(3)}${s.label ? '' : ' (good)'}</figcaption></figure>` : '';
  const worstGood = sorted.filter((s) => !s.label).slice(0, 8);
  const weakestDefects = sorted.filter((s) => s.label).slice(-8);
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>dcam-webgpu evaluation</title>
<style>body{font-family:sans-serif;margin:24px}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
td:first-child{text-align:left}figure{display:inline-block;margin:4px;font-size:11px}.plots svg{margin-right:12px}</style></head><body>
<h1>Evaluation</h1><p>${esc(JSON.stringify(meta))}</p>
<table><tr><th>category</th><th>images</th><th>defects</th><th>image AUROC</th><th>pixel AUROC</th><th>AU-PRO@0.3</th><th>legacy PRO</th></tr>
${rows}
<tr><th>mean</th><th></th><th></th><th>${fmt(r.mean.imageAUROC)}</th><th>${fmt(r.mean.pixelAUROC)}</th><th>${fmt(r.mean.auPRO)}</th><th>${fmt(r.mean.legacyPRO)}</th></tr></table>
<div class="plots">${plot('image ROC', Object.fromEntries(Object.entries(r.curves).map(([k, v]) => [k, v.roc])), 1, 'false positive rate', 'true positive rate')}
${plot('PRO curve', Object.fromEntries(Object.entries(r.curves).map(([k, v]) => [k, v.pro])), 0.3, 'false positive rate', 'PRO')}</div>
<h2>Highest-scoring good images (false alarms)</h2>${worstGood.map(card).join('')}
<h2>Lowest-scoring defect images (misses)</h2>${weakestDefects.map(card).join('')}
<h2>All test images by score</h2>${sorted.map(card).join('')}
</body></html>`;
  const reportPath = join(dir, 'report.html');
  writeFileSync(reportPath, html);
  return { metrics: metricsPath, report: reportPath };
}
