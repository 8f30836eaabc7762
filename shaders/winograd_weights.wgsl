// Winograd F(2x2, 3x3) weight transform U = G g G^T, one invocation per (reduced channel k, output channel o),
// written as U[e][k][o padded] (e = the 16 elements of the 4x4 tile) so that the GEMM reads the TM output
// channels of its block as TM/4 vec4 loads, as the direct convolution's packed weights.
// FORWARD: g = w[o, k] (k = input channel). Otherwise (backward-data, a stride-1 convolution of dy with
// the flipped, transposed weights): g = w[k, o] rotated by 180 degrees (k = output channel of the forward).
@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG_SIZE + lid;
  let width = P.pad4 * 4u;
  if (i >= P.reduced * width) { return; }
  let k = i / width;
  let o = i % width;
  var g: array<vec3f, 3>;
  if (o < P.outputs) {
    for (var r = 0u; r < 3u; r = r + 1u) {
#if ${FORWARD}
      let base = (o * P.reduced + k) * 9u + r * 3u;
      g[r] = vec3f(w[base], w[base + 1u], w[base + 2u]);
#else
      let base = (k * P.outputs + o) * 9u + (2u - r) * 3u;
      g[r] = vec3f(w[base + 2u], w[base + 1u], w[base]);
#endif
    }
  }
  // G g: 4 rows of 3 (G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1])
  var t: array<vec3f, 4>;
  t[0] = g[0];
  t[1] = 0.5 * (g[0] + g[1] + g[2]);
  t[2] = 0.5 * (g[0] - g[1] + g[2]);
  t[3] = g[2];
  let plane = P.reduced * width;
  for (var r = 0u; r < 4u; r = r + 1u) {
    // (G g) G^T: the same combination along the row
    let v = t[r];
    let row = vec4f(v.x, 0.5 * (v.x + v.y + v.z), 0.5 * (v.x - v.y + v.z), v.z);
    for (var c = 0u; c < 4u; c = c + 1u) {
      u[(r * 4u + c) * plane + i] = row[c];
    }
  }
}
