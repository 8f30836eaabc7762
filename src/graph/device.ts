/**
 * One function to get a WebGPU device in Node (Dawn, npm package `webgpu`) and in browsers
 * (`navigator.gpu`), with the adapter's largest buffer limits and the optional features it has.
 */
import { Runtime, type AdapterDescription, type RuntimeOptions } from './runtime.js';

const OPTIONAL_FEATURES = ['shader-f16', 'subgroups', 'timestamp-query'] as const;

export interface CreateDeviceOptions extends RuntimeOptions {
  powerPreference?: GPUPowerPreference;
  /** Dawn toggles for Node, e.g. ['backend=vulkan']. */
  dawnOptions?: string[];
}

const NO_ADAPTER_HELP = [
  'No WebGPU adapter was found.',
  '- In a browser: use a recent Chrome/Edge (WebGPU is on by default) or enable it (chrome://flags/#enable-unsafe-webgpu; Firefox: dom.webgpu.enabled).',
  '- In Node on Linux without a GPU: install the software Vulkan driver with `bash scripts/setup-software-gpu.sh` (Mesa lavapipe).',
  '- In Node with a GPU: make sure its Vulkan (Linux), Metal (macOS) or D3D12 (Windows) driver is installed.',
].join('\n');

/** The WebGPU entry point, and whether it is Dawn's Node binding (whose waits spin: graph/host-wait.ts). */
async function getGpu(dawnOptions: string[]): Promise<{ gpu: GPU; dawnNode: boolean }> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return { gpu: nav.gpu, dawnNode: false };
  const isNode = typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === 'string';
  if (!isNode) throw new Error(`This browser has no WebGPU (navigator.gpu is missing).\n${NO_ADAPTER_HELP}`);
  // A variable module name keeps bundlers from pulling the Node-only package into browser builds.
  const pkg = 'webgpu';
  const { create, globals } = (await import(/* @vite-ignore */ pkg)) as {
    create: (o: string[]) => GPU;
    globals: Record<string, unknown>;
  };
  Object.assign(globalThis, globals);
  return { gpu: create(dawnOptions), dawnNode: true };
}

export async function createDevice(options: CreateDeviceOptions = {}): Promise<Runtime> {
  const { gpu, dawnNode } = await getGpu(options.dawnOptions ?? []);
  const adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  if (!adapter) throw new Error(NO_ADAPTER_HELP);
  const features = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f)) as GPUFeatureName[];
  const a = adapter.limits;
  const device = await adapter.requestDevice({
    requiredFeatures: features,
    requiredLimits: {
      maxBufferSize: a.maxBufferSize,
      maxStorageBufferBindingSize: a.maxStorageBufferBindingSize,
      maxStorageBuffersPerShaderStage: a.maxStorageBuffersPerShaderStage,
      maxComputeWorkgroupStorageSize: a.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: a.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: a.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupSizeY: a.maxComputeWorkgroupSizeY,
    },
  });
  const info = adapter.info;
  const description: AdapterDescription = {
    vendor: info?.vendor ?? '',
    architecture: info?.architecture ?? '',
    device: info?.device ?? '',
    description: info?.description ?? '',
    features: [...(device.features as unknown as Iterable<string>)],
    isSoftware: /llvmpipe|lavapipe|swiftshader|software/i.test(`${info?.description} ${info?.device} ${info?.architecture}`),
  };
  const rt = new Runtime(device, description, { ...options, hostWait: options.hostWait ?? (dawnNode ? 'sleep' : 'poll') });
  // Dawn's Node binding polls the GPU instance for completed work; if the instance or adapter object
  // is garbage-collected while the device lives, pending promises (mapAsync, async pipelines) never
  // settle. The runtime holds on to both.
  rt.keepAlive = [gpu, adapter];
  return rt;
}

export function describeAdapter(rt: Runtime): string {
  const a = rt.adapter;
  const name = [a.vendor, a.architecture, a.device, a.description].filter((s) => s).join(' / ') || 'unknown adapter';
  return `${name}${a.isSoftware ? ' (software)' : ''}; features: ${a.features.join(', ') || 'none'}`;
}
