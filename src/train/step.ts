/** One optimisation step, shared by the Node trainer, the browser demo and the benchmark. */
import { backward } from '../autograd/engine.js';
import type { Runtime } from '../graph/runtime.js';
import type { DistillationModel } from '../model/distill.js';
import type { SGD } from '../optim/sgd.js';

/**
 * The method's loss on an NCHW batch (normalised images), backward, one SGD update. Resolves with the
 * loss and each weighted term, read back (so the step has finished on the GPU).
 */
export function trainStep(rt: Runtime, model: DistillationModel, opt: SGD, data: Float32Array, batch: number, size: number): Promise<Record<string, number>> {
  return rt.exclusive(() => rt.tidyAsync(async () => {
    const x = rt.tensor(data, [batch, 3, size, size]);
    const { loss, terms } = model.trainLoss(x);
    backward(loss);
    opt.step();
    opt.zeroGrad();
    const out: Record<string, number> = { loss: await loss.item() };
    for (const [k, v] of Object.entries(terms)) out[k] = await v.item();
    return out;
  }));
}
