/** Small wrappers used by runtime.test.ts. */
import type { Runtime } from '../src/index.js';
import { relu as reluOp } from '../src/index.js';
export { conv2d, maxPool2d, add, relu } from '../src/index.js';

/** Under noGrad, ops on a tensor that requires grad record no graph. */
export function noGradCheck(rt: Runtime): boolean {
  return rt.tidy(() => {
    const x = rt.zeros([4]);
    x.requiresGrad = true;
    const y = rt.noGrad(() => reluOp(x));
    return !y.requiresGrad && y.gradFn === null;
  });
}
