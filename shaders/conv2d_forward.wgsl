// Convolution as an implicit GEMM, NCHW: out[n, co, p] = sum_k W[co, k] * im2col(x)[n, k, p] (+ bias[co]),
// with k = (ci, kh, kw) and p = (oh, ow). im2col is never materialised: each invocation computes the input
// offsets of its pixels once per filter tap and walks the input channels with a fixed stride.
// Register blocking: an invocation owns TM output channels x 4*QUADS output pixels (vec4 accumulators),
// so each step loads 4*QUADS inputs and TM/4 vec4 weights for 4*TM*QUADS multiply-adds. A row of the
// workgroup (WG_X lanes over pixels) shares one channel block, so its weight addresses are uniform; small
// maps have fewer pixel groups than lanes, and there its rows (WG_Y) take more channel blocks.
// No workgroup memory: neighbouring invocations share rows through the cache, and software rasterisers
// (lavapipe) run barriers poorly.
// SPLIT: small feature maps give too few invocations to fill a GPU, so the input channels are split into
// P.splits chunks (grid z = batch x chunk); each writes its partial sums, and sum_splits adds them and
// applies the epilogue.
//!include lib_conv_block
const TM: u32 = ${TM}u;
const QUADS: u32 = ${PQ}u; // pixel quads

@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wid: vec3u,
        @builtin(local_invocation_id) lid: vec3u) {
  let OHW = P.OH * P.OW;
  // Pixel j of this invocation is p0 + j * WG_X, so neighbouring invocations read neighbouring pixels.
  let p0 = wid.x * WG_X * 4u * QUADS + lid.x;
  let pstep = WG_X;
  let co0 = gid.y * TM;
#if ${SPLIT}
  let n = gid.z / P.splits;
  let split = gid.z % P.splits;
  let ciBegin = split * P.chunk;
  let ciEnd = min(P.Cin, ciBegin + P.chunk);
#else
  let n = gid.z;
  let ciBegin = 0u;
  let ciEnd = P.Cin;
#endif
  if (p0 >= OHW || co0 >= P.Cout) { return; }

  let HW = P.H * P.W;
  let KK = P.KH * P.KW;
  // Top-left input corner of each pixel's receptive field, in quads of 4 pixels.
  var ihb: array<vec4i, QUADS>;
  var iwb: array<vec4i, QUADS>;
  for (var q = 0u; q < QUADS; q = q + 1u) {
    for (var j = 0u; j < 4u; j = j + 1u) {
      let p = min(p0 + (4u * q + j) * pstep, OHW - 1u);
      ihb[q][j] = i32((p / P.OW) * P.stride) - i32(P.pad);
      iwb[q][j] = i32((p % P.OW) * P.stride) - i32(P.pad);
    }
  }
  // Weights packed as [k][Cout padded] (conv2d_pack_weights): the TM channels are TM/4 vec4 loads.
  let wq0 = co0 / 4u;

  var acc: array<vec4f, TM * QUADS>; // acc[q * TM + r]: channel co0 + r, pixel quad q
  let xn = n * P.Cin * HW;
  for (var kh = 0u; kh < P.KH; kh = kh + 1u) {
    for (var kw = 0u; kw < P.KW; kw = kw + 1u) {
      var off: array<vec4u, QUADS>;
      var mask: array<vec4f, QUADS>;
      for (var q = 0u; q < QUADS; q = q + 1u) {
        let ih = ihb[q] + vec4i(i32(kh));
        let iw = iwb[q] + vec4i(i32(kw));
        let valid = (ih >= vec4i(0)) & (ih < vec4i(i32(P.H))) & (iw >= vec4i(0)) & (iw < vec4i(i32(P.W)));
        off[q] = vec4u(select(vec4i(0), ih * i32(P.W) + iw, valid));
        mask[q] = select(vec4f(0.0), vec4f(1.0), valid);
      }
      let wstep = KK * P.pad4;
      var xi = xn + ciBegin * HW;
      var wq = (kh * P.KW + kw) * P.pad4 + wq0 + ciBegin * wstep;
      for (var ci = ciBegin; ci < ciEnd; ci = ci + 1u) {
        var xv: array<vec4f, QUADS>;
        for (var q = 0u; q < QUADS; q = q + 1u) {
          xv[q] = vec4f(x[xi + off[q].x], x[xi + off[q].y], x[xi + off[q].z], x[xi + off[q].w]) * mask[q];
        }
        accumulate_block(&acc, wq, &xv);
        xi = xi + HW;
        wq = wq + wstep;
      }
    }
  }

  for (var r = 0u; r < TM; r = r + 1u) {
    let co = co0 + r;
    if (co >= P.Cout) { break; }
#if ${SPLIT}
    let base = ((split * P.N + n) * P.Cout + co) * OHW + p0;
#else
    let base = (n * P.Cout + co) * OHW + p0;
#endif
    for (var q = 0u; q < QUADS; q = q + 1u) {
#if ${HAS_BIAS}
      var b = acc[q * TM + r] + vec4f(bias[co]);
#else
      var b = acc[q * TM + r];
#endif
#if ${RESIDUAL}
      // Fused residual add (inference: a ResNet block's conv2 + shortcut, then the ReLU below).
      for (var j = 0u; j < 4u; j = j + 1u) {
        b[j] = b[j] + res[base + min((4u * q + j) * pstep, OHW - 1u - p0)];
      }
#endif
#if ${RELU}
      let v = select(b, vec4f(0.0), b < vec4f(0.0)); // fused ReLU epilogue (inference); keeps NaN, as PyTorch
#else
      let v = b;
#endif
      for (var j = 0u; j < 4u; j = j + 1u) {
        if (p0 + (4u * q + j) * pstep < OHW) { y[base + (4u * q + j) * pstep] = v[j]; }
      }
    }
  }
}
