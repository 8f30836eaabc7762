/**
 * dcam-webgpu: the public API (browser-safe; in Node the package resolves to node.ts, which adds file
 * paths to loadDetector and the Node-only training tools).
 */
export {
  loadDetector, Detector, DetectorError, SHIPPED_TEACHER_URL,
  type ImageInput, type InspectionResult, type InspectOptions, type Region, type RunSource, type LoadDetectorOptions,
} from './detector.js';
export { FewShotTrainer, trainDetector, type FewShotOptions, type TrainDetectorOptions, type TrainProgress } from './fewshot.js';
export { overlayRgb, imageRgb } from './eval/heatmap.js';
export { fingerprintDistance, FINGERPRINT_TOLERANCE } from './model/fingerprint.js';
export type { RunConfig, Thresholds, CategoryThresholds, DecisionThresholds } from './train/run-config.js';
export type { Tiling } from './data/tiles.js';
export { decodeImage, probeImage, type RgbImage } from './data/image.js';
export { createDevice, describeAdapter, type CreateDeviceOptions } from './graph/device.js';
export { Runtime, DeviceLostError, type AdapterDescription } from './graph/runtime.js';
export { Tensor, sizeOf, shapeStr, type Shape, type DType } from './graph/tensor.js';
export type { MemoryStats } from './graph/buffer-pool.js';
export type { KernelTime } from './graph/profiler.js';
export type { Recording } from './graph/recording.js';
export { registerShaderSources } from './graph/shader-source.js';
export { ShaderCompileError } from './graph/pipeline-cache.js';
export type { KernelSpec } from './graph/kernel.js';
export { backward } from './autograd/engine.js';
export * from './autograd/ops.js';
export { Conv2d, BatchNorm2d, parameter, type Layer } from './nn/layers.js';
export { Rng, kaimingNormalFanOut, defaultUniform } from './nn/init.js';
export { SGD, type SgdOptions } from './optim/sgd.js';
