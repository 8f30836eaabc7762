/**
 * `tidy` scopes: every tensor created inside is disposed when the scope ends, except the ones it returns
 * (which move to the enclosing scope) and the ones marked with `keep()`. This is what keeps a training
 * loop from leaking GPU memory without hand-written dispose calls.
 */
import { Tensor } from './tensor.js';

/** Tensors found in a returned value (a tensor, or arrays / plain objects holding tensors). */
export type TensorContainer = unknown;

export class ScopeStack {
  private readonly stack: Set<Tensor>[] = [];

  get depth(): number {
    return this.stack.length;
  }

  track(t: Tensor): void {
    const top = this.stack[this.stack.length - 1];
    if (top) {
      top.add(t);
      t.scope = top;
    }
  }

  begin(): Set<Tensor> {
    const s = new Set<Tensor>();
    this.stack.push(s);
    return s;
  }

  end(scope: Set<Tensor>, result: TensorContainer): void {
    const top = this.stack.pop();
    if (top !== scope) throw new Error('tidy scopes ended out of order (an async scope interleaved with another?)');
    const keep = new Set<Tensor>();
    collectTensors(result, keep);
    const parent = this.stack[this.stack.length - 1] ?? null;
    for (const t of keep) {
      if (t.scope === scope) {
        scope.delete(t);
        t.scope = parent;
        parent?.add(t);
      }
    }
    for (const t of [...scope]) t.dispose();
  }
}

function collectTensors(value: unknown, out: Set<Tensor>, depth = 0): void {
  if (value === null || typeof value !== 'object' || depth > 4) return;
  if (value instanceof Tensor) {
    out.add(value);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) collectTensors(v, out, depth + 1);
  } else if (Object.getPrototypeOf(value) === Object.prototype || value instanceof Map) {
    const values = value instanceof Map ? [...value.values()] : Object.values(value);
    for (const v of values) collectTensors(v, out, depth + 1);
  }
}
