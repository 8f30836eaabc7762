/** What every benchmark section gets: the runtime, the peers, the run's settings. */
import type { Runtime } from '../../src/graph/runtime.js';
import type { HostWait } from '../../src/graph/host-wait.js';
import type { HostCounters } from './host-counts.js';
import type { OrtWebBuild } from './ort-web-peer.js';
import type { TfjsPeer } from './tfjs-peer.js';
import type { PeerResult, TimingOptions } from './timing.js';

export interface Bench {
  rt: Runtime;
  tfjs: PeerResult<TfjsPeer>;
  /** Tiny sizes, one timed run: proves the harness works (CI). */
  quick: boolean;
  timing: TimingOptions;
  /** Teacher weights file, or null for a random teacher (timings do not depend on the values). */
  teacherFile: string | null;
  /** Skip onnxruntime-node. */
  noOrt: boolean;
  /** The onnxruntime-web builds to run as WebGPU peers (none with --no-ort-web). */
  ortWeb: OrtWebBuild[];
  /** The webgpu package's globals (ort-web needs its prototypes patched: lib/ort-web-peer.ts). */
  gpuGlobals: Record<string, unknown>;
  /** How the peers' threads wait for the GPU. */
  peerWait: HostWait;
  /** WebGPU calls counted at the API (lib/host-counts.ts). */
  counters: HostCounters;
  /** Training presets and sizes to time (--quick uses 32). */
  methods: Array<'stfpm' | 'dcam'>;
  trainSizes: number[];
}
