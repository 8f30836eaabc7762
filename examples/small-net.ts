/**
 * A small residual conv net on the engine: conv -> BN -> ReLU -> max pool -> residual block -> strided
 * 1x1 conv with bias. Used by the README example and the training-parity test.
 */
import { add, maxPool2d, relu, type Runtime, type Tensor } from '../src/index.js';
import { BatchNorm2d, Conv2d, parameter } from '../src/nn/layers.js';
import { Rng } from '../src/nn/init.js';

export type StateDict = Record<string, { shape: number[]; data: Float32Array }>;

export class SmallNet {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly conv3: Conv2d;
  readonly bn3: BatchNorm2d;
  readonly head: Conv2d;

  /** Random init (torchvision style), or the tensors of a PyTorch state_dict with the same names. */
  constructor(rt: Runtime, init?: StateDict, seed = 0) {
    const rng = new Rng(seed);
    const p = (name: string) => parameter(rt, init![name].data, init![name].shape);
    const buf = (name: string) => rt.tensor(init![name].data, init![name].shape).keep();
    const conv = (name: string, cin: number, cout: number, k: number, stride: number, pad: number, bias = false) =>
      init ? new Conv2d(p(`${name}.weight`), bias ? p(`${name}.bias`) : null, stride, pad) : Conv2d.create(rt, cin, cout, k, { stride, padding: pad, rng });
    const bn = (name: string, c: number) =>
      init ? new BatchNorm2d(p(`${name}.weight`), p(`${name}.bias`), buf(`${name}.running_mean`), buf(`${name}.running_var`)) : BatchNorm2d.create(rt, c);
    this.conv1 = conv('conv1', 3, 8, 3, 1, 1);
    this.bn1 = bn('bn1', 8);
    this.conv2 = conv('conv2', 8, 8, 3, 1, 1);
    this.bn2 = bn('bn2', 8);
    this.conv3 = conv('conv3', 8, 8, 3, 1, 1);
    this.bn3 = bn('bn3', 8);
    if (init) this.head = conv('head', 8, 4, 1, 2, 0, true);
    else {
      const w = Conv2d.create(rt, 8, 4, 1, { stride: 2, rng }).weight;
      this.head = new Conv2d(w, parameter(rt, new Float32Array(4), [4]), 2, 0);
    }
  }

  forward(x: Tensor): Tensor {
    const h = maxPool2d(relu(this.bn1.forward(this.conv1.forward(x))));
    const y = this.bn3.forward(this.conv3.forward(relu(this.bn2.forward(this.conv2.forward(h)))));
    return this.head.forward(relu(add(h, y)));
  }

  parameters(): Tensor[] {
    return [this.conv1, this.bn1, this.conv2, this.bn2, this.conv3, this.bn3, this.head].flatMap((l) => l.parameters());
  }
}
