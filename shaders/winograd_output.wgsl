// Winograd output transform Y = A^T M A: one invocation per (output channel, 4 consecutive tiles t of the
// batch) loads the tiles' ALPHA^2 products as vec4s (M[e][o][t], t padded to P.T4, a multiple of 4), turns
// each tile's into its TILE x TILE outputs with the convolution's epilogue (bias, residual add, ReLU), and
// writes those inside the output (sizes off the tile end in a partial tile). P.n0: the first image of this
// chunk of the batch. TO_PHASES (a stride-2 conv's backward-data, dy's stride-1 conv into the input's
// phases): output channel o = 4 ci + 2 ph + pw is phase (ph, pw) of input channel ci, its pixel (h, w)
// dx[ci][2h + ph - pad][2w + pw - pad] of the P.XH x P.XW input, written where inside it (every input pixel
// is one phase's, so each is written once).
//!include lib_winograd

@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG_SIZE + lid;
  let quads = P.T4 / 4u;
  if (i >= P.Cout * quads) { return; }
  let o = i / quads;
  let plane = P.Cout * quads;
  var products: array<vec4f, ALPHA * ALPHA>;
  for (var e = 0u; e < ALPHA * ALPHA; e = e + 1u) { products[e] = M[e * plane + i]; }
#if ${HAS_BIAS}
  let shift = bias[o];
#else
  let shift = 0.0;
#endif
  let tilesPerImage = P.TH * P.TW;
  for (var l = 0u; l < 4u; l = l + 1u) {
    let t = 4u * (i % quads) + l;
    if (t >= P.N * tilesPerImage) { return; }
    let n = P.n0 + t / tilesPerImage;
    let tile = t % tilesPerImage;
    // along each row of products (M A: ALPHA rows of TILE), then along each column
    var rows: array<OutLine, ALPHA>;
    for (var a = 0u; a < ALPHA; a = a + 1u) {
      var m: Line;
      for (var b = 0u; b < ALPHA; b = b + 1u) { m[b] = products[a * ALPHA + b][l]; }
      rows[a] = output_line(m);
    }
    let oh = TILE * (tile / P.TW);
    let ow = TILE * (tile % P.TW);
#if ${TO_PHASES}
    let ph = (o / 2u) % 2u;
    let pw = o % 2u;
    let outPlane = (n * (P.Cout / 4u) + o / 4u) * P.XH * P.XW;
#else
    let outPlane = (n * P.Cout + o) * P.OH * P.OW;
#endif
    for (var j = 0u; j < TILE; j = j + 1u) {
      var column: Line;
      for (var a = 0u; a < ALPHA; a = a + 1u) { column[a] = rows[a][j]; }
      let y_j = output_line(column);
      let w = ow + j;
      for (var r = 0u; r < TILE; r = r + 1u) {
        let h = oh + r;
#if ${TO_PHASES}
        let xh = 2 * i32(h) + i32(ph) - i32(P.pad);
        let xw = 2 * i32(w) + i32(pw) - i32(P.pad);
        let inside = h < P.OH && w < P.OW && xh >= 0 && xh < i32(P.XH) && xw >= 0 && xw < i32(P.XW);
        let at = outPlane + u32(max(xh, 0)) * P.XW + u32(max(xw, 0));
#else
        let inside = h < P.OH && w < P.OW;
        let at = outPlane + h * P.OW + w;
#endif
        if (inside) {
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
}
