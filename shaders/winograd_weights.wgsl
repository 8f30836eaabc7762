// Winograd weight transform U = G g G^T, one invocation per (reduced channel k, output channel o), written
// as U[e][k][o padded] (e = the ALPHA^2 tile elements) so that the GEMM reads the TM output channels of
// its block as TM/4 vec4 loads, as the direct convolution's packed weights.
// FORWARD: g = w[o, k] (k = input channel). Otherwise (backward-data, a stride-1 convolution of dy with
// the flipped, transposed weights): g = w[k, o] rotated by 180 degrees (k = output channel of the forward).
// K4: the stem's 7x7 stride-2 weights, as the 4x4 filters of their four phases, U = A g A^T.
// K2: a 3x3 stride-2 conv's weights, as the (at most) 2x2 filters of their four phases, U = G g G^T of
// F(4x4, 2x2).
//!include lib_winograd

@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG_SIZE + lid;
  let width = P.pad4 * 4u;
  if (i >= P.reduced * width) { return; }
  let k = i / width;
  let o = i % width;
#if ${K4}
  // The stem (F(3x3, 4x4)): k = 4 ci + 2 ph + pw is phase (ph, pw) of input channel ci, whose filter is
  // g[r][s] = w[o, ci, 2r + ph, 2s + pw] (zero past the P.K x P.K kernel).
  var g: array<ShortLine, 4>;
  if (o < P.outputs) {
    let ci = k / 4u;
    let ph = (k / 2u) % 2u;
    let pw = k % 2u;
    let plane = (o * (P.reduced / 4u) + ci) * P.K * P.K;
    for (var r = 0u; r < 4u; r = r + 1u) {
      for (var s = 0u; s < 4u; s = s + 1u) {
        let kh = 2u * r + ph;
        let kw = 2u * s + pw;
        g[r][s] = select(0.0, w[plane + min(kh, P.K - 1u) * P.K + min(kw, P.K - 1u)], kh < P.K && kw < P.K);
      }
    }
  }
  // along each filter row (g A^T: 4 rows of ALPHA), then along each column
  var rows: array<Line, 4>;
  for (var r = 0u; r < 4u; r = r + 1u) { rows[r] = gradient_line(g[r]); }
  let plane = P.reduced * width;
  for (var b = 0u; b < ALPHA; b = b + 1u) {
    let u_b = gradient_line(ShortLine(rows[0][b], rows[1][b], rows[2][b], rows[3][b]));
    for (var a = 0u; a < ALPHA; a = a + 1u) { u[(a * ALPHA + b) * plane + i] = u_b[a]; }
  }
#elif ${K2}
  // k = 4 ci + 2 ph + pw is phase (ph, pw) of input channel ci, whose filter is g[r][s] = w[o, ci, 2r + ph,
  // 2s + pw] (zero past the 3x3 kernel: the odd phases have one tap along that side)
  var g: array<vec2f, 2>;
  if (o < P.outputs) {
    let ph = (k / 2u) % 2u;
    let pw = k % 2u;
    let plane = (o * (P.reduced / 4u) + k / 4u) * 9u;
    for (var r = 0u; r < 2u; r = r + 1u) {
      let kh = 2u * r + ph;
      let row = plane + min(kh, 2u) * 3u;
      g[r] = select(vec2f(0.0), vec2f(w[row + pw], select(0.0, w[row + 2u], pw == 0u)), kh < 3u);
    }
  }
  let rows = array<Line, 2>(phase_weight_line(g[0]), phase_weight_line(g[1]));
  let plane = P.reduced * width;
  for (var b = 0u; b < ALPHA; b = b + 1u) {
    let u_b = phase_weight_line(vec2f(rows[0][b], rows[1][b]));
    for (var a = 0u; a < ALPHA; a = a + 1u) { u[(a * ALPHA + b) * plane + i] = u_b[a]; }
  }
#else
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
  // along each filter row (g G^T: 3 rows of ALPHA), then along each column
  var rows: array<Line, 3>;
  for (var r = 0u; r < 3u; r = r + 1u) { rows[r] = weight_line(g[r]); }
  let plane = P.reduced * width;
  for (var b = 0u; b < ALPHA; b = b + 1u) {
    let u_b = weight_line(vec3f(rows[0][b], rows[1][b], rows[2][b]));
    for (var a = 0u; a < ALPHA; a = a + 1u) { u[(a * ALPHA + b) * plane + i] = u_b[a]; }
  }
#endif
}
