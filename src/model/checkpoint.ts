/**
 * Checkpoints as safetensors: `student.safetensors` (torchvision ResNet18 names, BN running statistics and
 * num_batches_tracked included: loads with `resnet18().load_state_dict(sd, strict=False)`) and
 * `attention.safetensors` ({k}.mlp.0.weight, {k}.mlp.2.weight, {k}.spatial.weight). Files are written
 * atomically (temporary file, then rename), so an interrupted write never leaves a broken checkpoint.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { attentionStateDict, type AttentionBlock } from './attention.js';
import type { ResNetTrunk } from './resnet.js';
import { writeSafetensors, type RawTensor } from './weights/index.js';

export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

export async function studentSafetensors(student: ResNetTrunk): Promise<Uint8Array> {
  return writeSafetensors(await student.stateDict(), { format: 'pt', source: 'dcam-webgpu' });
}

export async function attentionSafetensors(blocks: readonly AttentionBlock[]): Promise<Uint8Array> {
  return writeSafetensors(await attentionStateDict(blocks), { format: 'pt', source: 'dcam-webgpu' });
}

export async function saveStudent(path: string, student: ResNetTrunk): Promise<void> {
  writeFileAtomic(path, await studentSafetensors(student));
}

export async function saveAttention(path: string, blocks: readonly AttentionBlock[]): Promise<void> {
  writeFileAtomic(path, await attentionSafetensors(blocks));
}

export type { RawTensor };
