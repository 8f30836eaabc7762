/**
 * Float64 CPU reference implementations of every op, written from the definitions (not from the
 * kernels). NCHW, row-major. Used for forward checks and, through finite differences, gradient checks.
 */

export type Shape4 = [number, number, number, number];

export function conv2d(x: Float64Array, xs: Shape4, w: Float64Array, ws: Shape4, b: Float64Array | null, stride: number, pad: number): { y: Float64Array; shape: Shape4 } {
  const [N, C, H, W] = xs;
  const [O, , KH, KW] = ws;
  const OH = Math.floor((H + 2 * pad - KH) / stride) + 1;
  const OW = Math.floor((W + 2 * pad - KW) / stride) + 1;
  const y = new Float64Array(N * O * OH * OW);
  for (let n = 0; n < N; n++)
    for (let o = 0; o < O; o++)
      for (let oh = 0; oh < OH; oh++)
        for (let ow = 0; ow < OW; ow++) {
          let s = b ? b[o] : 0;
          for (let c = 0; c < C; c++)
            for (let kh = 0; kh < KH; kh++) {
              const ih = oh * stride - pad + kh;
              if (ih < 0 || ih >= H) continue;
              for (let kw = 0; kw < KW; kw++) {
                const iw = ow * stride - pad + kw;
                if (iw < 0 || iw >= W) continue;
                s += x[((n * C + c) * H + ih) * W + iw] * w[((o * C + c) * KH + kh) * KW + kw];
              }
            }
          y[((n * O + o) * OH + oh) * OW + ow] = s;
        }
  return { y, shape: [N, O, OH, OW] };
}

/** Float64 gradient of a convolution with respect to its input (a transposed convolution). */
export function conv2dInputGrad(dy: Float64Array, w: Float64Array, [N, Cin, H, W]: readonly number[], [Cout, , K]: readonly number[], OH: number, OW: number, stride: number, pad: number): Float64Array {
  const dx = new Float64Array(N * Cin * H * W);
  for (let n = 0; n < N; n++) for (let co = 0; co < Cout; co++) for (let oh = 0; oh < OH; oh++) for (let ow = 0; ow < OW; ow++) {
    const g = dy[((n * Cout + co) * OH + oh) * OW + ow];
    for (let ci = 0; ci < Cin; ci++) for (let kh = 0; kh < K; kh++) for (let kw = 0; kw < K; kw++) {
      const h = oh * stride - pad + kh;
      const x = ow * stride - pad + kw;
      if (h >= 0 && h < H && x >= 0 && x < W) dx[((n * Cin + ci) * H + h) * W + x] += g * w[((co * Cin + ci) * K + kh) * K + kw];
    }
  }
  return dx;
}

/** Float64 gradient of a stride-1 convolution with respect to its weights. */
export function conv2dWeightGrad(dy: Float64Array, x: Float64Array, [N, Cin, H, W]: readonly number[], [Cout, , K]: readonly number[], OH: number, OW: number, pad: number, stride = 1): Float64Array {
  const dw = new Float64Array(Cout * Cin * K * K);
  for (let n = 0; n < N; n++) for (let co = 0; co < Cout; co++) for (let oh = 0; oh < OH; oh++) for (let ow = 0; ow < OW; ow++) {
    const g = dy[((n * Cout + co) * OH + oh) * OW + ow];
    for (let ci = 0; ci < Cin; ci++) for (let kh = 0; kh < K; kh++) for (let kw = 0; kw < K; kw++) {
      const h = oh * stride - pad + kh;
      const v = ow * stride - pad + kw;
      if (h >= 0 && h < H && v >= 0 && v < W) dw[((co * Cin + ci) * K + kh) * K + kw] += g * x[((n * Cin + ci) * H + h) * W + v];
    }
  }
  return dw;
}

export function batchNorm(x: Float64Array, xs: Shape4, gamma: Float64Array, beta: Float64Array, mean: Float64Array | null, variance: Float64Array | null, eps: number): Float64Array {
  const [N, C, H, W] = xs;
  const HW = H * W;
  const M = N * HW;
  const y = new Float64Array(x.length);
  for (let c = 0; c < C; c++) {
    let m = 0;
    let v = 0;
    if (mean && variance) {
      m = mean[c];
      v = variance[c];
    } else {
      for (let n = 0; n < N; n++) for (let p = 0; p < HW; p++) m += x[(n * C + c) * HW + p];
      m /= M;
      for (let n = 0; n < N; n++) for (let p = 0; p < HW; p++) v += (x[(n * C + c) * HW + p] - m) ** 2;
      v /= M;
    }
    const inv = 1 / Math.sqrt(v + eps);
    for (let n = 0; n < N; n++) for (let p = 0; p < HW; p++) {
      const i = (n * C + c) * HW + p;
      y[i] = (x[i] - m) * inv * gamma[c] + beta[c];
    }
  }
  return y;
}

export const relu = (x: Float64Array) => x.map((v) => Math.max(v, 0));
export const sigmoid = (x: Float64Array) => x.map((v) => 1 / (1 + Math.exp(-v)));

/**
 * Max pooling as PyTorch's kernels: each window scanned by rows then columns, a larger value or a NaN
 * replacing the best, so ties keep the first index and a NaN propagates; argmax is the index within the
 * input plane.
 */
export function maxPool(x: ArrayLike<number>, xs: Shape4, k: number, s: number, p: number): { y: Float64Array; argmax: Uint32Array; shape: Shape4 } {
  const [N, C, H, W] = xs;
  const OH = Math.floor((H + 2 * p - k) / s) + 1;
  const OW = Math.floor((W + 2 * p - k) / s) + 1;
  const y = new Float64Array(N * C * OH * OW);
  const argmax = new Uint32Array(y.length);
  for (let nc = 0; nc < N * C; nc++)
    for (let oh = 0; oh < OH; oh++)
      for (let ow = 0; ow < OW; ow++) {
        let best = -Infinity;
        let at = -1;
        for (let i = 0; i < k; i++)
          for (let j = 0; j < k; j++) {
            const ih = oh * s - p + i;
            const iw = ow * s - p + j;
            if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
            const v = x[(nc * H + ih) * W + iw];
            if (at < 0 || v > best || Number.isNaN(v)) {
              best = v;
              at = ih * W + iw;
            }
          }
        y[(nc * OH + oh) * OW + ow] = best;
        argmax[(nc * OH + oh) * OW + ow] = at;
      }
  return { y, argmax, shape: [N, C, OH, OW] };
}

/** a (op) b with b broadcast to a's rank-4 shape. */
export function broadcastBinary(a: Float64Array, as: Shape4, b: Float64Array, bs: Shape4, op: (x: number, y: number) => number): Float64Array {
  const y = new Float64Array(a.length);
  const [, C, H, W] = as;
  let i = 0;
  for (let n = 0; n < as[0]; n++)
    for (let c = 0; c < C; c++)
      for (let h = 0; h < H; h++)
        for (let w = 0; w < W; w++, i++) {
          const j = (((bs[0] === 1 ? 0 : n) * bs[1] + (bs[1] === 1 ? 0 : c)) * bs[2] + (bs[2] === 1 ? 0 : h)) * bs[3] + (bs[3] === 1 ? 0 : w);
          y[i] = op(a[i], b[j]);
        }
  return y;
}

export function globalPool(x: Float64Array, xs: Shape4, kind: 'avg' | 'max'): Float64Array {
  const [N, C, H, W] = xs;
  const HW = H * W;
  const y = new Float64Array(N * C);
  for (let nc = 0; nc < N * C; nc++) {
    let acc = kind === 'avg' ? 0 : -Infinity;
    for (let p = 0; p < HW; p++) acc = kind === 'avg' ? acc + x[nc * HW + p] : Math.max(acc, x[nc * HW + p]);
    y[nc] = kind === 'avg' ? acc / HW : acc;
  }
  return y;
}

export function channelPool(x: Float64Array, xs: Shape4, kinds: Array<'mean' | 'max'>): Float64Array {
  const [N, C, H, W] = xs;
  const HW = H * W;
  const K = kinds.length;
  const y = new Float64Array(N * K * HW);
  for (let n = 0; n < N; n++)
    for (let p = 0; p < HW; p++) {
      let s = 0;
      let m = -Infinity;
      for (let c = 0; c < C; c++) {
        const v = x[(n * C + c) * HW + p];
        s += v;
        m = Math.max(m, v);
      }
      kinds.forEach((k, j) => (y[(n * K + j) * HW + p] = k === 'mean' ? s / C : m));
    }
  return y;
}

export function linear(x: Float64Array, B: number, I: number, w: Float64Array, O: number): Float64Array {
  const y = new Float64Array(B * O);
  for (let b = 0; b < B; b++) for (let o = 0; o < O; o++) {
    let s = 0;
    for (let i = 0; i < I; i++) s += x[b * I + i] * w[o * I + i];
    y[b * O + o] = s;
  }
  return y;
}

export function cosine(a: Float64Array, b: Float64Array, xs: Shape4, axis: 'channel' | 'spatial', eps: number): Float64Array {
  const [N, C, H, W] = xs;
  const HW = H * W;
  const [outer, L, inner] = axis === 'channel' ? [N, C, HW] : [N * C, HW, 1];
  const y = new Float64Array(outer * inner);
  for (let o = 0; o < outer; o++) for (let i = 0; i < inner; i++) {
    let d = 0, aa = 0, bb = 0;
    for (let l = 0; l < L; l++) {
      const k = (o * L + l) * inner + i;
      d += a[k] * b[k];
      aa += a[k] * a[k];
      bb += b[k] * b[k];
    }
    y[o * inner + i] = d / (Math.sqrt(aa) * Math.sqrt(bb) + eps);
  }
  return y;
}

function logSoftmaxRow(x: Float64Array, off: number, L: number, T: number): Float64Array {
  let m = -Infinity;
  for (let p = 0; p < L; p++) m = Math.max(m, x[off + p] / T);
  let s = 0;
  for (let p = 0; p < L; p++) s += Math.exp(x[off + p] / T - m);
  const lse = m + Math.log(s);
  const out = new Float64Array(L);
  for (let p = 0; p < L; p++) out[p] = x[off + p] / T - lse;
  return out;
}

export function softmaxRows(x: Float64Array, rows: number, L: number, log: boolean): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < rows; r++) {
    const ls = logSoftmaxRow(x, r * L, L, 1);
    for (let p = 0; p < L; p++) y[r * L + p] = log ? ls[p] : Math.exp(ls[p]);
  }
  return y;
}

export function klRows(t: Float64Array, s: Float64Array, rows: number, L: number, T: number): Float64Array {
  const y = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const lt = logSoftmaxRow(t, r * L, L, T);
    const ls = logSoftmaxRow(s, r * L, L, T);
    let k = 0;
    for (let p = 0; p < L; p++) k += Math.exp(lt[p]) * (lt[p] - ls[p]);
    y[r] = k;
  }
  return y;
}

/** PyTorch bilinear, align_corners = false. */
export function upsampleBilinear(x: Float64Array, xs: Shape4, OH: number, OW: number): Float64Array {
  const [N, C, IH, IW] = xs;
  const src = (o: number, inSize: number, outSize: number) => {
    const s = Math.max((inSize / outSize) * (o + 0.5) - 0.5, 0);
    const i0 = Math.min(Math.floor(s), inSize - 1);
    const i1 = i0 < inSize - 1 ? i0 + 1 : i0;
    return { i0, i1, l1: s - i0 };
  };
  const y = new Float64Array(N * C * OH * OW);
  for (let nc = 0; nc < N * C; nc++)
    for (let oy = 0; oy < OH; oy++) {
      const sy = src(oy, IH, OH);
      for (let ox = 0; ox < OW; ox++) {
        const sx = src(ox, IW, OW);
        const at = (yy: number, xx: number) => x[(nc * IH + yy) * IW + xx];
        y[(nc * OH + oy) * OW + ox] =
          (1 - sy.l1) * ((1 - sx.l1) * at(sy.i0, sx.i0) + sx.l1 * at(sy.i0, sx.i1)) +
          sy.l1 * ((1 - sx.l1) * at(sy.i1, sx.i0) + sx.l1 * at(sy.i1, sx.i1));
      }
    }
  return y;
}
