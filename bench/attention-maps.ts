/**
 * The issue-15 suspect, measured on trained runs: with attention on the loss side the student is trained
 * so that att(s) matches the teacher, but the maps score the raw s (attention is dropped at inference);
 * in line, the student's later layers were trained on gated inputs that inference no longer gates.
 * Each run is evaluated both ways, the same weights: the maps as shipped, and the maps of the attended
 * student features. Writes OUT/attention-maps.{md,json}.
 *
 *   npx tsx bench/attention-maps.ts --run runs/ablation/runs/dcam-channel-multi-seed0 [--run ...] [--out DIR]
 */
import { discoverCategories } from '../src/data/mvtec.js';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createDevice, describeAdapter } from '../src/index.js';
import { evaluate } from '../src/eval/evaluate.js';
import { createAttention, loadAttention } from '../src/model/attention.js';
import { DistillationModel } from '../src/model/distill.js';
import { readStateDict } from '../src/model/weights/index.js';
import { Detector } from '../src/detector.js';
import { loadDetector } from '../src/node.js';
import { readRunConfig, runDataDir, runStudent } from '../src/train/run.js';
import { loadTeacher, runTeacherFile } from '../src/train/trainer.js';
import { ResNetTrunk } from '../src/model/resnet.js';

const { values: a } = parseArgs({ options: { run: { type: 'string', multiple: true, default: [] }, out: { type: 'string', default: 'runs/attention-maps' } } });
const rt = await createDevice();
const rows: Array<Record<string, unknown>> = [];
const lines = ['| run | category | maps | image AUROC | pixel AUROC | AU-PRO@0.3 |', '|---|---|---|---:|---:|---:|'];
for (const run of a.run!) {
  const config = readRunConfig(run);
  if (config.method.attention === 'none') throw new Error(`${run}: not a run with attention`);
  const raw = await loadDetector({ run, runtime: rt });
  // the same student and teacher, scored on the attended features (Detector.fromModel: the research door)
  const blocks = createAttention(rt, config.method.attention, 0, config.method.reduction);
  const file = join(run, 'attention.safetensors');
  loadAttention(blocks, readStateDict(readFileSync(file), file), file);
  const s = runStudent(run);
  const attendedModel = new DistillationModel(await loadTeacher(rt, runTeacherFile(config), config.seed), ResNetTrunk.fromStateDict(rt, readStateDict(s.bytes, s.file), s.file, false), blocks, config.method);
  attendedModel.scoreWithAttention = true;
  const attended = await Detector.fromModel(rt, attendedModel, config.size, null, { runtime: false, teacher: true });
  const data = runDataDir(config, run);
  for (const [maps, det] of [['raw student (as shipped)', raw], ['attended student', attended]] as const) {
    const ev = await evaluate(det, { categories: discoverCategories(data, config.categories) });
    for (const c of [...ev.categories, { category: 'mean', ...ev.mean }]) {
      rows.push({ run, maps, category: c.category, imageAUROC: c.imageAUROC, pixelAUROC: c.pixelAUROC, auPRO: c.auPRO });
      const b = (s: string) => (c.category === 'mean' ? `**${s}**` : s);
      lines.push(`| ${run.split('/').pop()} | ${b(c.category)} | ${maps} | ${b(c.imageAUROC.toFixed(3))} | ${b(c.pixelAUROC.toFixed(3))} | ${b(c.auPRO.toFixed(3))} |`);
    }
  }
  raw.dispose();
  attended.dispose(); // its model's student, attention and teacher
}
const md = ['# Maps of the raw vs the attended student', '', `Adapter: ${describeAdapter(rt)}. Command: \`npx tsx bench/attention-maps.ts ${process.argv.slice(2).join(' ')}\`.`, '', ...lines, ''].join('\n');
mkdirSync(a.out!, { recursive: true });
writeFileSync(join(a.out!, 'attention-maps.md'), md);
writeFileSync(join(a.out!, 'attention-maps.json'), JSON.stringify({ adapter: describeAdapter(rt), rows }, null, 2));
console.log(md);
rt.destroy();
