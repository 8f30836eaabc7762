// Weight gradient by Winograd F(3x3, TILE x TILE): each TILE x TILE tile of dy is the "filter" that
// correlates with its (TILE+2)^2 input patch to give that tile's 3x3 contribution to dW,
// dW = G^T [(A dy A^T) . (B^T d B)] G (lib_winograd); over the phases of a stride-2 conv's input, each
// tile's ALPHA^2 patch of a phase gives that phase's KERNEL x KERNEL taps (dy_line, tap_line). This pass
// transforms dy: one invocation per (tile,
// output channel), written as U[e][t][o padded] (t padded to P.T4, padded tiles and channels zero) for
// the GEMM over tiles; the tiles of the P.N images from P.n0 (a chunk of the batch).
//!include lib_winograd

@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG_SIZE + lid;
  let width = P.pad4 * 4u;
  if (i >= P.T4 * width) { return; }
  let t = i / width;
  let o = i % width;
  let tilesPerImage = P.TH * P.TW;
  var g: array<OutLine, TILE>;
  if (t < P.N * tilesPerImage && o < P.Cout) {
    let n = P.n0 + t / tilesPerImage;
    let h0 = TILE * ((t % tilesPerImage) / P.TW);
    let w0 = TILE * (t % P.TW);
    let plane = (n * P.Cout + o) * P.OH * P.OW;
    for (var r = 0u; r < TILE; r = r + 1u) {
      let h = h0 + r;
      let row = plane + min(h, P.OH - 1u) * P.OW;
      for (var k = 0u; k < TILE; k = k + 1u) {
        let w = w0 + k;
        g[r][k] = select(0.0, dy[row + min(w, P.OW - 1u)], h < P.OH && w < P.OW);
      }
    }
  }
  // along each row (dy A^T: TILE rows of ALPHA), then along each column
  var rows: array<Line, TILE>;
  for (var r = 0u; r < TILE; r = r + 1u) { rows[r] = dy_line(g[r]); }
  let planeOut = P.T4 * width;
  for (var b = 0u; b < ALPHA; b = b + 1u) {
    var column: OutLine;
    for (var r = 0u; r < TILE; r = r + 1u) { column[r] = rows[r][b]; }
    let e_b = dy_line(column);
    for (var a = 0u; a < ALPHA; a = a + 1u) { u[(a * ALPHA + b) * planeOut + i] = e_b[a]; }
  }
}
