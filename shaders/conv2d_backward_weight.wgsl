// dW[co, k] = sum over (n, oh, ow) of dy[n, co, oh, ow] * im2col(x)[n, k, (oh, ow)], k = (ci, kh, kw).
// The reduction (batch x output pixels) is long and the output small, so the reduction is split
// (split-K): z selects a range of output rows (n, oh), each split writes its own partial dW, and a
// second pass sums the partials. An invocation owns TM output channels x 4*CQ columns k. As in the forward,
// a row of the workgroup (WG_X lanes over columns) shares one channel block: its lanes read the same dy
// values (a broadcast on GPUs) and differ only in their columns k, i.e. in the x values they gather; with
// fewer column groups than lanes (1x1 convs, conv1's 147 columns), its rows (WG_Y) take more channel blocks.
const TM: u32 = ${TM}u;
const CQ: u32 = ${CQ}u;

@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let KK = P.KH * P.KW;
  let cols = P.Cin * KK;
  let k0 = gid.x * 4u * CQ;
  let co0 = gid.y * TM;
  let split = gid.z;
  if (k0 >= cols || co0 >= P.Cout) { return; }

  let HW = P.H * P.W;
  let OHW = P.OH * P.OW;
  var ci: array<vec4u, CQ>;
  var kh: array<vec4i, CQ>;
  var kw: array<vec4i, CQ>;
  for (var q = 0u; q < CQ; q = q + 1u) {
    for (var j = 0u; j < 4u; j = j + 1u) {
      let k = min(k0 + 4u * q + j, cols - 1u);
      ci[q][j] = k / KK;
      kh[q][j] = i32((k % KK) / P.KW);
      kw[q][j] = i32(k % P.KW);
    }
  }
  var dyco: array<u32, TM>;
  for (var i = 0u; i < TM; i = i + 1u) { dyco[i] = min(co0 + i, P.Cout - 1u) * OHW; }

  var acc: array<vec4f, TM * CQ>; // acc[q * TM + i]: channel co0 + i, column quad q
  let rows = P.N * P.OH;
  let rowEnd = min(rows, (split + 1u) * P.rowsPerSplit);
  for (var row = split * P.rowsPerSplit; row < rowEnd; row = row + 1u) {
    let n = row / P.OH;
    let oh = row % P.OH;
    var rowValid: array<vec4<bool>, CQ>;
    var xrow: array<vec4i, CQ>;
    for (var q = 0u; q < CQ; q = q + 1u) {
      let ih = vec4i(i32(oh * P.stride) - i32(P.pad)) + kh[q];
      rowValid[q] = (ih >= vec4i(0)) & (ih < vec4i(i32(P.H)));
      xrow[q] = vec4i((n * P.Cin + ci[q]) * HW) + select(vec4i(0), ih * i32(P.W), rowValid[q]);
    }
    let dyrow = n * P.Cout * OHW + oh * P.OW;
    for (var ow = 0u; ow < P.OW; ow = ow + 1u) {
      var xv: array<vec4f, CQ>;
      for (var q = 0u; q < CQ; q = q + 1u) {
        let iw = vec4i(i32(ow * P.stride) - i32(P.pad)) + kw[q];
        let valid = rowValid[q] & (iw >= vec4i(0)) & (iw < vec4i(i32(P.W)));
        let off = vec4u(xrow[q] + select(vec4i(0), iw, valid));
        xv[q] = vec4f(x[off.x], x[off.y], x[off.z], x[off.w]) * select(vec4f(0.0), vec4f(1.0), valid);
      }
      for (var i = 0u; i < TM; i = i + 1u) {
        let d = vec4f(dy[dyrow + dyco[i] + ow]);
        for (var q = 0u; q < CQ; q = q + 1u) { acc[q * TM + i] = fma(d, xv[q], acc[q * TM + i]); }
      }
    }
  }

  let out0 = split * P.Cout * cols;
  for (var i = 0u; i < TM; i = i + 1u) {
    let co = co0 + i;
    if (co >= P.Cout) { break; }
    for (var q = 0u; q < CQ; q = q + 1u) {
      for (var j = 0u; j < 4u; j = j + 1u) {
        let k = k0 + 4u * q + j;
        if (k < cols) { partial[out0 + co * cols + k] = acc[q * TM + i][j]; }
      }
    }
  }
}
