/**
 * Checkpoints as safetensors: `student.safetensors` (torchvision ResNet18 names, BN running statistics and
 * num_batches_tracked included: loads with `resnet18().load_state_dict(sd, strict=False)`) and
 * `attention.safetensors` ({k}.mlp.0.weight, {k}.mlp.2.weight, {k}.spatial.weight), as bytes (the trainer
 * writes them atomically; the browser demo offers them for download).
 */
import { attentionStateDict, type AttentionBlock } from './attention.js';
import type { ResNetTrunk } from './resnet.js';
import { writeSafetensors, type RawTensor } from './weights/index.js';

export async function studentSafetensors(student: ResNetTrunk): Promise<Uint8Array> {
  return writeSafetensors(await student.stateDict(), { format: 'pt', source: 'dcam-webgpu' });
}

export async function attentionSafetensors(blocks: readonly AttentionBlock[]): Promise<Uint8Array> {
  return writeSafetensors(await attentionStateDict(blocks), { format: 'pt', source: 'dcam-webgpu' });
}

export type { RawTensor };
