/**
 * `tidy` scopes: every tensor created inside is disposed when the scope ends, except the ones it returns
 * (which move to the enclosing scope) and the ones marked with `keep()`. This is what keeps a training
 * loop from leaking GPU memory without hand-written dispose calls.
 */
import { Tensor, shapeStr } from './tensor.js';

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
    const at = this.stack.lastIndexOf(scope);
    if (at < 0) throw new Error('internal: tidy scope ended twice');
    this.stack.splice(at, 1);
    if (at !== this.stack.length) {
      // Another scope began after this one and has not ended: two tidyAsync calls interleaved on one
      // runtime, so each may have adopted (and will dispose) the other's tensors. Not recoverable.
      for (const t of [...scope]) t.dispose();
      throw new Error(
        'tidyAsync scopes interleaved on one runtime (two GPU sessions awaited at the same time, e.g. an inspection while a training step ran): ' +
          "their tensors cannot be told apart. Run them one after another, e.g. through Runtime.exclusive().",
      );
    }
    const keep = new Set<Tensor>();
    collectTensors(result, keep, scope);
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

/**
 * Tensors in a returned value: the value itself, or arrays, plain objects, Maps and Sets holding them
 * (up to 6 levels). A tensor of the ending scope found anywhere else (a class instance's field) would be
 * disposed behind the caller's back, so that is an error rather than a silent use-after-dispose later.
 */
function collectTensors(value: unknown, out: Set<Tensor>, scope: Set<Tensor>, depth = 0): void {
  if (value === null || typeof value !== 'object') return;
  if (value instanceof Tensor) {
    out.add(value);
    return;
  }
  const proto = Object.getPrototypeOf(value);
  const transparent = Array.isArray(value) || value instanceof Map || value instanceof Set || proto === Object.prototype || proto === null;
  const values: unknown[] = value instanceof Map || value instanceof Set ? [...value.values()] : Object.values(value);
  if (!transparent) {
    const hidden = values.find((v) => v instanceof Tensor && v.scope === scope);
    if (hidden) {
      const name = (proto?.constructor as { name?: string } | undefined)?.name ?? 'object';
      throw new Error(`tidy: the result holds a tensor ${shapeStr((hidden as Tensor).shape)} inside a ${name}, where tidy does not look: return tensors in arrays or plain objects, or keep() them`);
    }
    return;
  }
  if (depth >= 6) {
    if (values.some((v) => v !== null && typeof v === 'object')) throw new Error('tidy: the result nests containers more than 6 levels deep; return the tensors closer to the top, or keep() them');
    return;
  }
  for (const v of values) collectTensors(v, out, scope, depth + 1);
}
