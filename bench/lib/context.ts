/** What every benchmark section gets: the runtime, the peers, the run's settings. */
import type { Runtime } from '../../src/graph/runtime.js';
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
  /** Training presets and sizes to time (--quick uses 32). */
  methods: Array<'stfpm' | 'dcam'>;
  trainSizes: number[];
}
