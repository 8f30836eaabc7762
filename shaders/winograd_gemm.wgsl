// The 16 GEMMs of Winograd F(2x2, 3x3): M[e][o][j] = sum over k of U[e][k][o] * V[e][k][j], one per tile
// element e (grid z). A convolution: k = input channel, o = output channel, j = tile. A weight gradient:
// k = tile, o = output channel, j = input channel. Register blocking as the direct convolution: an
// invocation owns TM rows o x 4 consecutive columns j, so each step is one vec4 load of V (contiguous,
// neighbouring invocations read neighbouring vec4s) and TM/4 vec4 loads of U whose address is uniform
// across the workgroup (the row block comes from the workgroup id), for 4*TM multiply-adds: no gathers,
// no bounds masks, no filter taps.
//!include lib_conv_block
const TM: u32 = ${TM}u;

@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let quads = P.cols / 4u;
  let q = gid.x;
  let o0 = wid.y * TM;
  let e = gid.z;
  if (q >= quads || o0 >= P.outputs) { return; }
  var acc: array<vec4f, TM>;
  var vi = e * P.reduced * quads + q;
  var wq = e * P.reduced * P.pad4 + o0 / 4u;
  for (var k = 0u; k < P.reduced; k = k + 1u) {
    accumulate_block(&acc, wq, V[vi]);
    vi = vi + quads;
    wq = wq + P.pad4;
  }
  let base = (e * P.outputs + o0) * quads + q;
  for (var r = 0u; r < TM; r = r + 1u) {
    if (o0 + r >= P.outputs) { break; }
    M[base + r * quads] = acc[r];
  }
}
