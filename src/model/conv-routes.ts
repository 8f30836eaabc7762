/**
 * The routing table of the trunk's convolutions: for every ResNet18 conv (conv1..layer3) at an input size
 * and batch, the plan of each pass (frozen forward; trained forward, backward-data, weight gradient) on an
 * adapter, straight from the planner (kernels/conv-plan.ts). `bench/conv-routes.ts` prints it for
 * DESIGN.md; test/conv-routes.test.ts runs every row and checks the kernels each pass dispatches.
 */
import { convGeometryOf, type ConvGeometry } from '../kernels/conv2d.js';
import { frozenTransform, planConv, type AdapterCaps, type ConvPass, type ConvPlan, type ConvPolicy, type WeightKind } from '../kernels/conv-plan.js';
import { RESNET18_TRUNK, type TrunkConv } from './resnet.js';

export interface RouteRow {
  conv: TrunkConv;
  g: ConvGeometry;
  pass: ConvPass;
  weights: WeightKind;
  plan: ConvPlan;
}

/** The passes a conv of the trunk runs: frozen (teacher, folded student) forward only; trained, all three. */
export const ROUTED_PASSES: ReadonlyArray<[WeightKind, ConvPass]> = [['frozen', 'forward'], ['trained', 'forward'], ['trained', 'backward-data'], ['trained', 'backward-weight']];

/** Every trunk conv with its geometry for a batch of `batch` images of `size` x `size`, in forward order. */
export function trunkConvGeometries(size: number, batch: number): Array<{ conv: TrunkConv; g: ConvGeometry }> {
  const out: Array<{ conv: TrunkConv; g: ConvGeometry }> = [];
  const at = (c: TrunkConv, side: number) => {
    const g = convGeometryOf([batch, c.cin, side, side], [c.cout, c.cin, c.k, c.k], { stride: c.stride, padding: c.pad });
    out.push({ conv: c, g });
    return g.OH;
  };
  // the stem, then the 3x3 / 2 max pool
  let side = Math.floor((at(RESNET18_TRUNK.stem, size) + 2 - 3) / 2) + 1;
  for (const stage of RESNET18_TRUNK.stages) {
    for (const block of stage) {
      const input = side;
      side = at(block.conv1, input);
      at(block.conv2, side);
      if (block.downsample) at(block.downsample, input);
    }
  }
  return out;
}

/** The plan of every pass of every trunk conv on an adapter of these capabilities. */
export function routingTable(caps: AdapterCaps, size: number, batch: number, policy: ConvPolicy = {}): RouteRow[] {
  return trunkConvGeometries(size, batch).flatMap(({ conv, g }) =>
    ROUTED_PASSES.map(([weights, pass]) => ({
      conv, g, pass, weights,
      plan: planConv(caps, g, pass, weights, undefined, policy, weights === 'frozen' ? frozenTransform(caps, g, policy) : null),
    })),
  );
}
