// Winograd input transform V = B^T d B of every ALPHA x ALPHA input patch d (tiles of TILE x TILE outputs,
// patches overlapping by 2, zero outside the image). Written as V[e][c][t] (e = the ALPHA^2 tile elements,
// row-major) with t = (n, tile row, tile column) padded to P.T4 (a multiple of 4; padded tiles are zeros)
// so that the convolution's GEMM reads 4 consecutive tiles as one vec4; TRANSPOSED: V[e][t][c] with c
// padded to P.C4, for the weight gradient's GEMM, which reduces over tiles and reads 4 consecutive
// channels as one vec4. One invocation per vec4 of V: 4 consecutive tiles of a channel (4 consecutive
// channels of a tile), transformed one after the other and stored together (a quarter of the stores).
// PHASES (a stride-2 conv: the stem by F(3x3, 4x4), a 3x3 one by F(4x4, 2x2)): the C channels of V are the four stride-2 phases
// of each of the C / 4 input channels. P.n0: the first image of this chunk of the batch.
//!include lib_winograd
const STEP: i32 = select(1, 2, ${PHASES}); // input pixels per pixel of the (phase) image

@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG_SIZE + lid;
#if ${TRANSPOSED}
  let quads = P.C4 / 4u;
  if (i >= P.T4 * quads) { return; }
  let planeOut = P.T4 * quads;
#else
  let quads = P.T4 / 4u;
  if (i >= P.C * quads) { return; }
  let planeOut = P.C * quads;
#endif
  let tilesPerImage = P.TH * P.TW;
  var out: array<vec4f, ALPHA * ALPHA>;
  for (var l = 0u; l < 4u; l = l + 1u) {
#if ${TRANSPOSED}
    let t = i / quads;
    let c = 4u * (i % quads) + l;
#else
    let c = i / quads;
    let t = 4u * (i % quads) + l;
#endif
    var d: array<Line, ALPHA>;
    if (t < P.N * tilesPerImage && c < P.C) {
      let n = P.n0 + t / tilesPerImage;
#if ${PHASES}
      // channel c is phase (ph, pw) of input channel c / 4, the image z[r][s] = x[2r + ph][2s + pw]
      // (before padding), whose stride-1 conv with the phase's filter is that phase's share of the output
      let ci = c / 4u;
      let planes = P.C / 4u;
      let h0 = 2 * i32(TILE * ((t % tilesPerImage) / P.TW)) + i32((c / 2u) % 2u) - i32(P.pad);
      let w0 = 2 * i32(TILE * (t % P.TW)) + i32(c % 2u) - i32(P.pad);
#else
      let ci = c;
      let planes = P.C;
      let h0 = i32(TILE * ((t % tilesPerImage) / P.TW)) - i32(P.pad);
      let w0 = i32(TILE * (t % P.TW)) - i32(P.pad);
#endif
      let plane = (n * planes + ci) * P.H * P.W;
      // branch-free: addresses clamped into the image, values outside it masked to zero
      for (var r = 0u; r < ALPHA; r = r + 1u) {
        let h = h0 + STEP * i32(r);
        let row = plane + u32(clamp(h, 0, i32(P.H) - 1)) * P.W;
        let rowOk = h >= 0 && h < i32(P.H);
        for (var k = 0u; k < ALPHA; k = k + 1u) {
          let w = w0 + STEP * i32(k);
          let v = x[row + u32(clamp(w, 0, i32(P.W) - 1))];
          d[r][k] = select(0.0, v, rowOk && w >= 0 && w < i32(P.W));
        }
      }
    }
    // along each row (d B), then along each column (B^T of that)
    for (var r = 0u; r < ALPHA; r = r + 1u) { d[r] = input_line(d[r]); }
    for (var k = 0u; k < ALPHA; k = k + 1u) {
      var column: Line;
      for (var r = 0u; r < ALPHA; r = r + 1u) { column[r] = d[r][k]; }
      let v = input_line(column);
      for (var r = 0u; r < ALPHA; r = r + 1u) { out[r * ALPHA + k][l] = v[r]; }
    }
  }
  for (var e = 0u; e < ALPHA * ALPHA; e = e + 1u) { V[e * planeOut + i] = out[e]; }
}
