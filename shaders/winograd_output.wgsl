// Winograd F(2x2, 3x3) output transform Y = A^T M A (A^T = [1 1 1 0; 0 1 -1 -1]): one invocation per
// (image, output channel, tile) turns the tile's 16 products into its 2x2 outputs, with the convolution's
// epilogue (bias, residual add, ReLU), and writes those inside the output (odd sizes end in a half tile).
@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG_SIZE + lid;
  let tilesPerImage = P.TH * P.TW;
  if (i >= P.N * P.Cout * tilesPerImage) { return; }
  let tile = i % tilesPerImage;
  let nc = i / tilesPerImage;
  let n = nc / P.Cout;
  let o = nc % P.Cout;
  let t = n * tilesPerImage + tile;
  let plane = P.Cout * P.T4;
  var m: array<vec4f, 4>;
  for (var r = 0u; r < 4u; r = r + 1u) {
    let at = (r * 4u) * plane + o * P.T4 + t;
    m[r] = vec4f(M[at], M[at + plane], M[at + 2u * plane], M[at + 3u * plane]);
  }
  let a0 = m[0] + m[1] + m[2];
  let a1 = m[1] - m[2] - m[3];
  var y2 = vec4f(a0.x + a0.y + a0.z, a0.y - a0.z - a0.w, a1.x + a1.y + a1.z, a1.y - a1.z - a1.w);
#if ${HAS_BIAS}
  y2 = y2 + vec4f(bias[o]);
#endif
  let oh = 2u * (tile / P.TW);
  let ow = 2u * (tile % P.TW);
  let outPlane = (n * P.Cout + o) * P.OH * P.OW;
  for (var j = 0u; j < 4u; j = j + 1u) {
    let h = oh + j / 2u;
    let w = ow + j % 2u;
    if (h < P.OH && w < P.OW) {
      let at = outPlane + h * P.OW + w;
      var v = y2[j];
#if ${RESIDUAL}
      v = v + res[at];
#endif
#if ${RELU}
      v = select(v, 0.0, v < 0.0); // keeps NaN, as PyTorch
#endif
      y[at] = v;
    }
  }
}
