// Winograd output transform Y = A^T M A: one invocation per (image, output channel, tile) turns the tile's
// ALPHA^2 products into its TILE x TILE outputs, with the convolution's epilogue (bias, residual add,
// ReLU), and writes those inside the output (sizes off the tile end in a partial tile).
//!include lib_winograd

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
  // along each row of products (M A: ALPHA rows of TILE), then along each column
  var rows: array<OutLine, ALPHA>;
  for (var a = 0u; a < ALPHA; a = a + 1u) {
    var m: Line;
    for (var b = 0u; b < ALPHA; b = b + 1u) { m[b] = M[(a * ALPHA + b) * plane + o * P.T4 + t]; }
    rows[a] = output_line(m);
  }
#if ${HAS_BIAS}
  let shift = bias[o];
#else
  let shift = 0.0;
#endif
  let oh = TILE * (tile / P.TW);
  let ow = TILE * (tile % P.TW);
  let outPlane = (n * P.Cout + o) * P.OH * P.OW;
  for (var j = 0u; j < TILE; j = j + 1u) {
    var column: Line;
    for (var a = 0u; a < ALPHA; a = a + 1u) { column[a] = rows[a][j]; }
    let y_j = output_line(column);
    let w = ow + j;
    for (var r = 0u; r < TILE; r = r + 1u) {
      let h = oh + r;
      if (h < P.OH && w < P.OW) {
        let at = outPlane + h * P.OW + w;
        var v = y_j[r] + shift;
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
}
