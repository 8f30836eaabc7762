// The GEMMs of Winograd: M[e][o][j] = sum over k of U[e][k][o] * V[e][k][j], one per tile element e
// (grid z). A convolution: k = input channel, o = output channel, j = tile. A weight gradient:
// k = tile, o = output channel, j = input channel. Register blocking (accumulate_block, as the direct
// convolutions): an invocation owns TM rows o x QUADS quads of consecutive columns j, so each step is QUADS
// vec4 loads of V (contiguous: neighbouring invocations read neighbouring vec4s) and TM/4 vec4 loads of U, for
// 4*TM*QUADS multiply-adds, with no bounds masks or filter taps. The workgroup is one row of invocations
// over columns (U's address uniform across it) unless there are too few columns to fill it: then its rows
// (WG_Y) take consecutive row blocks, so that the lanes of a small GEMM are not left idle. ACCUMULATE: M
// += the products (a weight gradient's GEMM over the tiles of the batch, chunk by chunk).
//!include lib_conv_block
const TM: u32 = ${TM}u;
const QUADS: u32 = ${CQ}u; // column quads

@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let quads = P.cols / 4u;
  let q0 = gid.x * QUADS;
  let o0 = gid.y * TM;
  let e = gid.z;
  if (q0 >= quads || o0 >= P.outputs) { return; }
  var acc: array<vec4f, TM * QUADS>; // acc[c * TM + r]: row o0 + r, column quad q0 + c
  var vi = e * P.reduced * quads;
  var wq = e * P.reduced * P.pad4 + o0 / 4u;
  for (var k = 0u; k < P.reduced; k = k + 1u) {
    var v: array<vec4f, QUADS>;
    for (var c = 0u; c < QUADS; c = c + 1u) { v[c] = V[vi + min(q0 + c, quads - 1u)]; }
    accumulate_block(&acc, wq, &v);
    vi = vi + quads;
    wq = wq + P.pad4;
  }
  let base = (e * P.outputs + o0) * quads + q0;
  for (var r = 0u; r < TM; r = r + 1u) {
    if (o0 + r >= P.outputs) { break; }
    for (var c = 0u; c < QUADS; c = c + 1u) {
#if ${ACCUMULATE}
      if (q0 + c < quads) { M[base + r * quads + c] = M[base + r * quads + c] + acc[c * TM + r]; }
#else
      if (q0 + c < quads) { M[base + r * quads + c] = acc[c * TM + r]; }
#endif
    }
  }
}
