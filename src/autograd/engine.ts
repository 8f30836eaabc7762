/**
 * Reverse-mode autograd in the shape of micrograd: each differentiable op attaches its inputs and a
 * backward rule on its output; `backward()` makes one topological order from the root and runs the rules
 * in reverse, summing gradients of tensors used more than once (residual connections) and freeing what
 * each node saved as soon as its rule has run.
 */
import { binaryForward } from '../kernels/elementwise.js';
import { Tensor, shapeStr, type GradNode } from '../graph/tensor.js';

/**
 * Gradients for each input given the output's gradient. `saved` holds the tensors given as `save` then
 * `own`; `needs[i]` says whether input i wants a gradient: the rule returns null where it does not (and
 * skips that work), a tensor of the input's shape where it does. Both are checked.
 */
export type BackwardRule = (grad: Tensor, saved: readonly Tensor[], needs: readonly boolean[]) => Array<Tensor | null>;

export interface BackwardOptions {
  /** Tensors the rule reads (inputs or outputs); the node holds its own handles on them. */
  save?: readonly Tensor[];
  /** Tensors made by the forward for the backward only (argmax, statistics); the node takes ownership. */
  own?: readonly Tensor[];
}

class Node implements GradNode {
  private saved: Tensor[];
  private owned: Tensor[];
  /** Inputs whose `graphUses` this node counts (those that required a gradient when it was made). */
  private readonly uses: Tensor[];
  private released = false;
  constructor(
    readonly op: string,
    readonly inputs: ReadonlyArray<Tensor | null>,
    private readonly rule: BackwardRule,
    save: readonly Tensor[],
    own: readonly Tensor[],
  ) {
    this.saved = save.map((t) => t.ref());
    this.owned = own.map((t) => t.keep());
    this.uses = inputs.filter((t): t is Tensor => !!t?.requiresGrad);
    for (const t of this.uses) t.graphUses++;
  }

  backward(grad: Tensor): Array<Tensor | null> {
    if (this.released) throw new Error(`${this.op}: backward called after the graph was released`);
    const needs = this.inputs.map((t) => !!t?.requiresGrad);
    const grads = this.rule(grad, [...this.saved, ...this.owned], needs);
    checkGradients(this.op, this.inputs, needs, grads);
    return grads;
  }

  /**
   * Frees what the node saved. Inputs the caller disposed kept their own nodes for this one (see
   * `Tensor.graphUses`); when this was their last user, they are released too: a worklist, not recursion,
   * since a chain of disposed intermediates can be as long as the network is deep.
   */
  release(cascade = true): void {
    const work: Node[] = [this];
    while (work.length > 0) {
      const node = work.pop()!;
      if (node.released) continue;
      node.released = true;
      for (const t of [...node.saved, ...node.owned]) t.dispose();
      node.saved = [];
      node.owned = [];
      for (const t of node.uses) {
        if (--t.graphUses === 0 && cascade && t.isDisposed && t.gradFn) {
          work.push(t.gradFn as Node);
          t.gradFn = null;
        }
      }
    }
  }
}

/** A rule's results: one per input, a tensor of the input's shape exactly where a gradient is needed. */
function checkGradients(op: string, inputs: ReadonlyArray<Tensor | null>, needs: readonly boolean[], grads: ReadonlyArray<Tensor | null>): void {
  const fail = (why: string) => {
    for (const g of grads) g?.dispose();
    throw new Error(`internal: the backward rule of ${op} ${why}`);
  };
  if (grads.length !== inputs.length) fail(`returned ${grads.length} gradient(s) for ${inputs.length} input(s)`);
  grads.forEach((g, i) => {
    const input = inputs[i];
    if (needs[i] && !g) fail(`returned no gradient for input ${i}, which requires one`);
    if (!needs[i] && g) fail(`returned a gradient for input ${i}, which does not require one`);
    if (g && input && (g.shape.length !== input.shape.length || g.shape.some((d, k) => d !== input.shape[k]))) {
      fail(`returned a gradient of shape ${shapeStr(g.shape)} for input ${i} of shape ${shapeStr(input.shape)}`);
    }
  });
}

/**
 * Attaches a backward rule to `output` when grad mode is on and some input requires a gradient;
 * otherwise frees the tensors the rule would have needed. The rule gets `save` then `own`, in order.
 */
export function attachBackward(
  op: string,
  inputs: ReadonlyArray<Tensor | null>,
  output: Tensor,
  rule: BackwardRule,
  opts: BackwardOptions = {},
): Tensor {
  const needed = output.runtime.gradEnabled && inputs.some((t) => t?.requiresGrad);
  if (!needed) {
    for (const t of opts.own ?? []) t.dispose();
    return output;
  }
  output.requiresGrad = true;
  output.gradFn = new Node(op, inputs, rule, opts.save ?? [], opts.own ?? []);
  return output;
}

function topologicalOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  // Iterative DFS: ResNet graphs are deep enough to make recursion a risk.
  const stack: Array<[Tensor, number]> = [[root, 0]];
  seen.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t.gradFn?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const child = inputs[i];
      if (child && child.requiresGrad && !seen.has(child)) {
        seen.add(child);
        stack.push([child, 0]);
      }
    } else {
      order.push(t);
      stack.pop();
    }
  }
  return order; // inputs before the tensors made from them
}

/**
 * Backpropagates from `root` (a scalar unless `grad` is given). Leaf tensors with `requiresGrad`
 * accumulate into `.grad` (kept outside `tidy` scopes); the graph is freed on the way.
 */
export function backward(root: Tensor, grad?: Tensor): void {
  const rt = root.runtime;
  if (!root.requiresGrad) throw new Error('backward: the tensor does not require a gradient (no parameter in its graph, or made under noGrad)');
  if (!grad && root.size !== 1) throw new Error(`backward: root has shape ${shapeStr(root.shape)}; pass its gradient or reduce it to a scalar`);
  const order = topologicalOrder(root);
  const grads = new Map<Tensor, Tensor>();
  grads.set(root, grad ? grad.ref() : rt.full(root.shape, 1).keep());
  const prevGrad = rt.gradEnabled;
  rt.gradEnabled = false; // backward rules get no backward rules of their own
  try {
    for (let k = order.length - 1; k >= 0; k--) {
      const t = order[k];
      const g = grads.get(t);
      if (!g) continue;
      grads.delete(t);
      const node = t.gradFn;
      if (!node) {
        accumulateLeaf(t, g);
        continue;
      }
      const inputGrads = node.backward(g);
      g.dispose();
      // No cascade: the inputs' own nodes come later in this loop (they are in the order).
      (node as Node).release(false);
      t.gradFn = null;
      node.inputs.forEach((input, i) => {
        const gi = inputGrads[i];
        if (!gi || !input) return;
        if (!input.gradFn && input.isDisposed) {
          for (const other of inputGrads) other?.dispose();
          throw new Error(`backward: a tensor ${shapeStr(input.shape)} that requires a gradient (input ${i} of ${node.op}) was disposed before backward`);
        }
        gi.keep();
        const prev = grads.get(input);
        grads.set(input, prev ? sumOf(prev, gi) : gi);
      });
    }
  } finally {
    rt.gradEnabled = prevGrad;
    for (const g of grads.values()) g.dispose();
    // After an error part of the graph is left: nodes of disposed tensors nobody uses any more go now.
    for (const t of order) {
      if (t.gradFn && t.isDisposed && t.graphUses === 0) {
        t.gradFn.release();
        t.gradFn = null;
      }
    }
  }
}

function accumulateLeaf(t: Tensor, g: Tensor): void {
  if (g.shape.length !== t.shape.length || g.shape.some((d, i) => d !== t.shape[i])) {
    throw new Error(`internal: gradient ${shapeStr(g.shape)} for tensor ${shapeStr(t.shape)}`);
  }
  t.grad = t.grad ? sumOf(t.grad, g) : g.keep();
}

/**
 * a + b as a new tensor, consuming both. Never in place: gradients may be views sharing storage
 * (e.g. both operands of an add receive the same gradient).
 */
function sumOf(a: Tensor, b: Tensor): Tensor {
  const s = binaryForward(a.runtime, 'add', a, b).keep();
  a.dispose();
  b.dispose();
  return s;
}
