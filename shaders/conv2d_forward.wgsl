// Convolution as an implicit GEMM, NCHW: out[n, co, p] = sum_k W[co, k] * im2col(x)[n, k, p] (+ bias[co]),
// with k = (ci, kh, kw) and p = (oh, ow). im2col is never materialised: each invocation computes the input
// offsets of its pixels once per filter tap and walks the input channels with a fixed stride.
// Register blocking: an invocation owns TM output channels x 4 consecutive output pixels (vec4 accumulators),
// so each step loads 4 inputs and TM weights for 4*TM multiply-adds. No workgroup memory: neighbouring
// invocations share rows through the cache, and software rasterisers (lavapipe) run barriers poorly.
const TM: u32 = ${TM}u;

@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let OHW = P.OH * P.OW;
  let p0 = gid.x * 4u;
  let co0 = gid.y * TM;
  let n = gid.z;
  if (p0 >= OHW || co0 >= P.Cout) { return; }

  let HW = P.H * P.W;
  let KK = P.KH * P.KW;
  let K = P.Cin * KK;
  // Top-left input corner of each of the 4 pixels' receptive fields.
  var ihb: vec4i;
  var iwb: vec4i;
  for (var j = 0u; j < 4u; j = j + 1u) {
    let p = min(p0 + j, OHW - 1u);
    ihb[j] = i32((p / P.OW) * P.stride) - i32(P.pad);
    iwb[j] = i32((p % P.OW) * P.stride) - i32(P.pad);
  }
  var wrow: array<u32, TM>;
  for (var r = 0u; r < TM; r = r + 1u) { wrow[r] = min(co0 + r, P.Cout - 1u) * K; }

  var acc: array<vec4f, TM>;
  let xn = n * P.Cin * HW;
  for (var kh = 0u; kh < P.KH; kh = kh + 1u) {
    let ih = ihb + vec4i(i32(kh));
    for (var kw = 0u; kw < P.KW; kw = kw + 1u) {
      let iw = iwb + vec4i(i32(kw));
      let valid = (ih >= vec4i(0)) & (ih < vec4i(i32(P.H))) & (iw >= vec4i(0)) & (iw < vec4i(i32(P.W)));
      let off = vec4u(select(vec4i(0), ih * i32(P.W) + iw, valid));
      let mask = select(vec4f(0.0), vec4f(1.0), valid);
      var xi = xn;
      var wk = kh * P.KW + kw;
      for (var ci = 0u; ci < P.Cin; ci = ci + 1u) {
        let xv = vec4f(x[xi + off.x], x[xi + off.y], x[xi + off.z], x[xi + off.w]) * mask;
        for (var r = 0u; r < TM; r = r + 1u) {
          acc[r] = fma(vec4f(w[wrow[r] + wk]), xv, acc[r]);
        }
        xi = xi + HW;
        wk = wk + KK;
      }
    }
  }

  for (var r = 0u; r < TM; r = r + 1u) {
    let co = co0 + r;
    if (co >= P.Cout) { break; }
#if ${HAS_BIAS}
    let v = acc[r] + vec4f(bias[co]);
#else
    let v = acc[r];
#endif
    let base = (n * P.Cout + co) * OHW + p0;
    for (var j = 0u; j < 4u; j = j + 1u) {
      if (p0 + j < OHW) { y[base + j] = v[j]; }
    }
  }
}
