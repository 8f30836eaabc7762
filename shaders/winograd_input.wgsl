// Winograd F(2x2, 3x3) input transform V = B^T d B of every 4x4 input patch d (tiles of 2x2 outputs, patches
// overlapping by 2, zero outside the image), one invocation per (channel, tile). Written as V[e][c][t] with
// t = (n, tile row, tile column) padded to P.T4 (a multiple of 4; padded tiles are zeros) so that the
// convolution's GEMM reads 4 consecutive tiles as one vec4; TRANSPOSED: V[e][t][c] with c padded to P.C4,
// for the weight gradient's GEMM, which reduces over tiles and reads 4 consecutive channels as one vec4.
@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG_SIZE + lid;
#if ${TRANSPOSED}
  if (i >= P.T4 * P.C4) { return; }
  let t = i / P.C4;
  let c = i % P.C4;
  let planeOut = P.T4 * P.C4;
#else
  if (i >= P.C * P.T4) { return; }
  let c = i / P.T4;
  let t = i % P.T4;
  let planeOut = P.C * P.T4;
#endif
  let tilesPerImage = P.TH * P.TW;
  var d: array<vec4f, 4>;
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
  var b: array<vec4f, 4>;
  b[0] = d[0] - d[2];
  b[1] = d[1] + d[2];
  b[2] = d[2] - d[1];
  b[3] = d[1] - d[3];
  for (var r = 0u; r < 4u; r = r + 1u) {
    let v = b[r];
    let row = vec4f(v.x - v.z, v.y + v.z, v.z - v.y, v.y - v.w);
    for (var e = 0u; e < 4u; e = e + 1u) {
      V[(r * 4u + e) * planeOut + i] = row[e];
    }
  }
}
