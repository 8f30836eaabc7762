// Max pooling, NCHW, -inf padding (a window never lies wholly in it: padding <= kernel / 2). One invocation
// per OUTS consecutive outputs of a row: their windows overlap along the row when the stride is below the
// kernel, so each input of the K rows x SEG columns they span is loaded once (3x3/2: 27 loads for 4 outputs
// instead of 36). Kernel and stride are constants, so the loops unroll. Branch-free: addresses clamped into
// the image, values outside it never taken. Each output scans its window in PyTorch's order (rows, then
// columns; a larger value or a NaN replaces the best), so values and argmax match PyTorch's, NaN included.
// ARGMAX: also writes the argmax (index within the input plane) for the backward.
//!include lib_float
const K: u32 = ${K}u;
const S: u32 = ${STRIDE}u;
const OUTS: u32 = 4u;
const SEG: u32 = (OUTS - 1u) * S + K;

@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG_SIZE + lid;
  let groups = (P.OW + OUTS - 1u) / OUTS;
  if (i >= P.rows * groups) { return; }
  let g = i % groups;
  let orow = i / groups; // (plane, oh)
  let oh = orow % P.OH;
  let base = (orow / P.OH) * P.H * P.W;
  let ih0 = i32(oh * S) - i32(P.pad);
  let iw0 = i32(g * OUTS * S) - i32(P.pad);
  var best: array<f32, OUTS>;
  var bestIdx: array<u32, OUTS>;
  var found: array<bool, OUTS>;
  for (var kh = 0u; kh < K; kh = kh + 1u) {
    let ih = ih0 + i32(kh);
    let rowOk = ih >= 0 && ih < i32(P.H);
    let row = u32(clamp(ih, 0, i32(P.H) - 1)) * P.W;
    var seg: array<f32, SEG>;
    var ok: array<bool, SEG>;
    for (var c = 0u; c < SEG; c = c + 1u) {
      let iw = iw0 + i32(c);
      ok[c] = rowOk && iw >= 0 && iw < i32(P.W);
      seg[c] = x[base + row + u32(clamp(iw, 0, i32(P.W) - 1))];
    }
    for (var j = 0u; j < OUTS; j = j + 1u) {
      for (var kw = 0u; kw < K; kw = kw + 1u) {
        let c = j * S + kw;
        let v = seg[c];
        let take = ok[c] && (!found[j] || v > best[j] || is_nan(v));
        best[j] = select(best[j], v, take);
        bestIdx[j] = select(bestIdx[j], row + u32(iw0 + i32(c)), take);
        found[j] = found[j] || take;
      }
    }
  }
  let out = orow * P.OW + g * OUTS;
  for (var j = 0u; j < OUTS; j = j + 1u) {
    if (g * OUTS + j < P.OW) {
      y[out + j] = best[j];
#if ${ARGMAX}
      argmax[out + j] = bestIdx[j];
#endif
    }
  }
}
