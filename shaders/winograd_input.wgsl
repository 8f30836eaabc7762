// Winograd F(2x2, 3x3) input transform V = B^T d B of every 4x4 input patch d (tiles of 2x2 outputs, patches
// overlapping by 2, zero outside the image). Written as V[e][c][t] with t = (n, tile row, tile column)
// padded to P.T4 (a multiple of 4; padded tiles are zeros), so that the convolution's GEMM reads 4
// consecutive tiles as one vec4; TRANSPOSED: V[e][t][c] with c padded to P.C4, for the weight gradient's
// GEMM, which reduces over tiles and reads 4 consecutive channels as one vec4. Either way an invocation
// transforms the 4 patches of one such vec4 and stores 16 vec4s (scalar stores are scatters to a
// software rasteriser: a quarter as many store instructions).

// The 16 values of B^T d B for channel c of tile t (zeros for a padded tile or channel), as 4 rows of 4.
fn transformPatch(t: u32, c: u32) -> array<vec4f, 4> {
  var d: array<vec4f, 4>;
  let tilesPerImage = P.TH * P.TW;
  if (t < P.N * tilesPerImage && c < P.C) {
    let n = t / tilesPerImage;
    let th = (t % tilesPerImage) / P.TW;
    let tw = t % P.TW;
    let h0 = i32(2u * th) - i32(P.pad);
    let w0 = i32(2u * tw) - i32(P.pad);
    let plane = (n * P.C + c) * P.H * P.W;
    // branch-free: addresses clamped into the image, values outside it masked to zero
    let cols = vec4i(w0) + vec4i(0, 1, 2, 3);
    let colOk = (cols >= vec4i(0)) & (cols < vec4i(i32(P.W)));
    let colAt = vec4u(clamp(cols, vec4i(0), vec4i(i32(P.W) - 1)));
    for (var r = 0u; r < 4u; r = r + 1u) {
      let h = h0 + i32(r);
      let ok = colOk & vec4<bool>(h >= 0 && h < i32(P.H));
      let at = plane + u32(clamp(h, 0, i32(P.H) - 1)) * P.W + colAt;
      d[r] = select(vec4f(0.0), vec4f(x[at.x], x[at.y], x[at.z], x[at.w]), ok);
    }
  }
  // B^T d (B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]), then the same along each row
  let b = array<vec4f, 4>(d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3]);
  var v: array<vec4f, 4>;
  for (var r = 0u; r < 4u; r = r + 1u) {
    let q = b[r];
    v[r] = vec4f(q.x - q.z, q.y + q.z, q.z - q.y, q.y - q.w);
  }
  return v;
}

@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG_SIZE + lid;
#if ${TRANSPOSED}
  // i = (t, channel quad): the 4 channels of one tile
  let quads = P.C4 / 4u;
  if (i >= P.T4 * quads) { return; }
  let planeOut = P.T4 * quads;
#else
  // i = (c, tile quad): 4 consecutive tiles of one channel
  let quads = P.T4 / 4u;
  if (i >= P.C * quads) { return; }
  let planeOut = P.C * quads;
#endif
  var out: array<vec4f, 16>;
  for (var j = 0u; j < 4u; j = j + 1u) {
#if ${TRANSPOSED}
    let v = transformPatch(i / quads, (i % quads) * 4u + j);
#else
    let v = transformPatch((i % quads) * 4u + j, i / quads);
#endif
    for (var e = 0u; e < 16u; e = e + 1u) { out[e][j] = v[e / 4u][e % 4u]; }
  }
  for (var e = 0u; e < 16u; e = e + 1u) { V[e * planeOut + i] = out[e]; }
}
