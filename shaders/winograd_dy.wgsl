// Weight gradient by Winograd F(3x3, 2x2): each 2x2 tile g of dy is the "filter" that correlates with its
// 4x4 input patch d to give that tile's 3x3 contribution to dW, y = A^T [(G g G^T) . (B^T d B)] A. The
// input side is the convolution's own input transform (same B, same patches); its sign convention is
// absorbed here (G = [1 0; .5 .5; .5 -.5; 0 -1]). One invocation per (tile, output channel), written as
// U[e][t][o padded] (t padded to P.T4, padded tiles and channels zero) for the GEMM over tiles.
@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG_SIZE + lid;
  let width = P.pad4 * 4u;
  if (i >= P.T4 * width) { return; }
  let t = i / width;
  let o = i % width;
  let tilesPerImage = P.TH * P.TW;
  var g: array<vec2f, 2>;
  if (t < P.N * tilesPerImage && o < P.Cout) {
    let n = t / tilesPerImage;
    let h0 = 2u * ((t % tilesPerImage) / P.TW);
    let w0 = 2u * (t % P.TW);
    let plane = (n * P.Cout + o) * P.OH * P.OW;
    for (var a = 0u; a < 2u; a = a + 1u) {
      let h = h0 + a;
      if (h < P.OH) {
        let at = plane + h * P.OW + w0;
        g[a] = vec2f(dy[at], select(0.0, dy[min(at + 1u, plane + h * P.OW + P.OW - 1u)], w0 + 1u < P.OW));
      }
    }
  }
  // G g: 4 rows of 2, then the same along each row
  var r: array<vec2f, 4>;
  r[0] = g[0];
  r[1] = 0.5 * (g[0] + g[1]);
  r[2] = 0.5 * (g[0] - g[1]);
  r[3] = -g[1];
  let planeOut = P.T4 * width;
  for (var k = 0u; k < 4u; k = k + 1u) {
    let v = r[k];
    let row = vec4f(v.x, 0.5 * (v.x + v.y), 0.5 * (v.x - v.y), -v.y);
    for (var e = 0u; e < 4u; e = e + 1u) {
      u[(k * 4u + e) * planeOut + i] = row[e];
    }
  }
}
