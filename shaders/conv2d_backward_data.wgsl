// dx[n, ci, ih, iw] = sum over (co, kh, kw) with ih = oh*S - pad + kh, iw = ow*S - pad + kw of
// W[co, ci, kh, kw] * dy[n, co, oh, ow]: a gather (no atomics), as a transposed convolution.
// Weights come packed as vec4s over input channels (conv2d_pack_weights).
// An invocation owns TM input channels x 4 input pixels of one row taken with stride S
// (iw = r + S*m, same phase r), so every pixel it owns hits the same filter taps: taps that do not land
// on the output grid are skipped as a whole instead of masked per pixel, and the 4 matching output pixels
// are consecutive (ow0 .. ow0+3).
// SPLIT: as in the forward, the output channels are split into P.splits chunks on GPUs when the input
// map is small (grid z = batch x chunk); each chunk writes partial sums that sum_splits adds.
//!include lib_conv_block
const TM: u32 = ${TM}u;
const QUADS: u32 = 1u;

@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let S = P.stride;
  // Invocation order: column phase r, then row phase, then row, then column group. Neighbouring
  // invocations thus share both phases and skip the same filter taps (no divergence between lanes).
  let q = gid.x % P.groupsPerRow;
  let t1 = gid.x / P.groupsPerRow;
  let ihIndex = t1 % P.rowsPerPhase;
  let t2 = t1 / P.rowsPerPhase;
  let ihPhase = t2 % S;
  let r = t2 / S;
  let ih = ihPhase + S * ihIndex;
  let ci0 = gid.y * TM; // uniform across a row of the workgroup, and so are the weight addresses
#if ${SPLIT}
  let n = gid.z / P.splits;
  let split = gid.z % P.splits;
  let coBegin = split * P.chunk;
  let coEnd = min(P.Cout, coBegin + P.chunk);
#else
  let n = gid.z;
  let coBegin = 0u;
  let coEnd = P.Cout;
#endif
  let m0 = q * 4u;
  if (r >= S || ih >= P.H || ci0 >= P.Cin || r + S * m0 >= P.W) { return; }

  let OHW = P.OH * P.OW;
  let KK = P.KH * P.KW;
  // Weights packed as [co][kh][kw][Cin padded] (conv2d_pack_weights): TM input channels = TM/4 vec4s.
  let wq0 = ci0 / 4u;
  let wco = KK * P.pad4;

  var acc: array<vec4f, TM * QUADS>;
  for (var kh = 0u; kh < P.KH; kh = kh + 1u) {
    let a = i32(ih) + i32(P.pad) - i32(kh);
    if (a < 0 || a % i32(S) != 0) { continue; }
    let oh = u32(a) / S;
    if (oh >= P.OH) { continue; }
    for (var kw = 0u; kw < P.KW; kw = kw + 1u) {
      let b = i32(r) + i32(P.pad) - i32(kw);
      if (b % i32(S) != 0) { continue; }
      let ow = vec4i(b / i32(S) + i32(m0)) + vec4i(0, 1, 2, 3);
      let iw = vec4i(i32(r)) + i32(S) * (vec4i(i32(m0)) + vec4i(0, 1, 2, 3));
      let valid = (ow >= vec4i(0)) & (ow < vec4i(i32(P.OW))) & (iw < vec4i(i32(P.W)));
      let mask = select(vec4f(0.0), vec4f(1.0), valid);
      let off = vec4u(select(vec4i(0), ow, valid));
      var di = (n * P.Cout + coBegin) * OHW + oh * P.OW;
      var wq = (kh * P.KW + kw) * P.pad4 + wq0 + coBegin * wco;
      for (var co = coBegin; co < coEnd; co = co + 1u) {
        var dv: array<vec4f, QUADS>;
        dv[0] = vec4f(dy[di + off.x], dy[di + off.y], dy[di + off.z], dy[di + off.w]) * mask;
        accumulate_block(&acc, wq, &dv);
        di = di + OHW;
        wq = wq + wco;
      }
    }
  }

  let HW = P.H * P.W;
  for (var i = 0u; i < TM; i = i + 1u) {
    let ci = ci0 + i;
    if (ci >= P.Cin) { break; }
#if ${SPLIT}
    let base = ((split * P.N + n) * P.Cin + ci) * HW + ih * P.W;
#else
    let base = (n * P.Cin + ci) * HW + ih * P.W;
#endif
    for (var j = 0u; j < 4u; j = j + 1u) {
      let iw = r + S * (m0 + j);
      if (iw < P.W) { dx[base + iw] = acc[i][j]; }
    }
  }
}
