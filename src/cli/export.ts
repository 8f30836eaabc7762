/**
 * `dcam export --format onnx`: a trained run as one ONNX model (teacher + student + anomaly map, BN
 * folded), with the run's method, size, input convention and thresholds in its metadata, for onnxruntime
 * or any other ONNX runtime.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildInferenceOnnx } from '../export/onnx.js';
import { foldTrunk, ResNetTrunk } from '../model/resnet.js';
import { readStateDict } from '../model/weights/index.js';
import { readRunConfig, runStudent } from '../train/run.js';
import { openRunTeacher, runTeacherFile } from '../train/trainer.js';
import { withDevice } from './common.js';

export interface ExportFlags { run: string; format: 'onnx'; out?: string; teacher?: string; force?: boolean }

export async function runExport(f: ExportFlags): Promise<string> {
  const run = readRunConfig(f.run);
  const student = runStudent(f.run);
  const out = f.out ?? join(f.run, 'model.onnx');
  await withDevice(async (rt) => {
    (await openRunTeacher(rt, run, f.run, f.teacher, f.force)).dispose(); // the run's network, by fingerprint
    const teacherFile = runTeacherFile(run, f.teacher);
    const trunks = [
      teacherFile ? ResNetTrunk.fromStateDict(rt, readStateDict(readFileSync(teacherFile), teacherFile), teacherFile, false) : ResNetTrunk.random(rt, run.seed + 7919),
      ResNetTrunk.fromStateDict(rt, readStateDict(student.bytes, student.file), student.file, false),
    ];
    const [teacher, studentArrays] = await Promise.all(trunks.map((t) => t.arrays()));
    for (const t of trunks) t.dispose();
    const metadata: Record<string, string> = {
      'dcam.method': run.method.method,
      'dcam.size': String(run.size),
      'dcam.input': run.tiling
        ? `image: float32 [tiles, 3, ${run.size}, ${run.size}], an image's tiles of ${run.size} x ${run.size} every ${run.tiling.stride} px (the last flush with the far edge) after scaling it by ${run.tiling.scale} (PIL bilinear), x/255, normalised with ImageNet mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225)`
        : `image: float32 [batch, 3, ${run.size}, ${run.size}], RGB resized to ${run.size}x${run.size} (PIL bilinear), x/255, normalised with ImageNet mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225)`,
      'dcam.output': run.tiling
        ? `map: float32 [tiles, 1, ${run.size}, ${run.size}]; the tiles' maps averaged where they overlap make the image's map; image score = its max`
        : `map: float32 [batch, 1, ${run.size}, ${run.size}]; image score = max of the map`,
      ...(run.tiling ? { 'dcam.tiling': JSON.stringify(run.tiling) } : {}),
      ...(run.thresholds ? { 'dcam.thresholds': JSON.stringify(run.thresholds) } : {}),
      ...(run.teacher.sha256 ? { 'dcam.teacher.sha256': run.teacher.sha256 } : {}),
    };
    writeFileSync(out, await buildInferenceOnnx(foldTrunk(teacher), foldTrunk(studentArrays), run.size, run.method.aggregation, metadata));
  });
  console.log(`wrote ${out} (ONNX opset 13: input 'image' [batch, 3, ${run.size}, ${run.size}], output 'map'${run.thresholds ? '; thresholds in its metadata' : ''})`);
  return out;
}
