// Winograd weight transform U = G g G^T, one invocation per (reduced channel k, output channel o), written
// as U[e][k][o padded] (e = the ALPHA^2 tile elements) so that the GEMM reads the TM output channels of
// its block as TM/4 vec4 loads, as the direct convolution's packed weights.
// FORWARD: g = w[o, k] (k = input channel). Otherwise (backward-data, a stride-1 convolution of dy with
// the flipped, transposed weights): g = w[k, o] rotated by 180 degrees (k = output channel of the forward).
// PHASES: a stride-2 conv's weights, as the filters of their four phases (phase_filter_line): the stem's
// 7x7 as 4x4 filters, U = A g A^T (F(3x3, 4x4)); a 3x3 as (at most) 2x2 ones, U = G g G^T (F(4x4, 2x2));
// for the backward-data pass, each phase's filter rotated, with the roles of k and o swapped.
//!include lib_winograd

@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG_SIZE + lid;
  let width = P.pad4 * 4u;
  if (i >= P.reduced * width) { return; }
  let k = i / width;
  let o = i % width;
#if ${PHASES}
  // A stride-2 conv over its input's phases: phase (ph, pw) of input channel ci has the KERNEL x KERNEL
  // filter f[r][s] = w[co, ci, 2r + ph, 2s + pw] (zero past the P.K x P.K kernel: the stem's 7x7 in 4x4
  // phase filters, a 3x3 in 2x2 ones).
#if ${FORWARD}
  // k = 4 ci + 2 ph + pw, o = co; g = f
  let co = o;
  let phase = k;
  let inputs = P.reduced / 4u;
#else
  // backward-data (dy's stride-1 conv into the input's phases): k = co, o = 4 ci + 2 ph + pw; g = f rotated
  // by 180 degrees
  let co = k;
  let phase = o;
  let inputs = P.outputs / 4u;
#endif
  var g: array<TapLine, KERNEL>;
  if (o < P.outputs) {
    let ci = phase / 4u;
    let ph = (phase / 2u) % 2u;
    let pw = phase % 2u;
    let plane = (co * inputs + ci) * P.K * P.K;
    for (var r = 0u; r < KERNEL; r = r + 1u) {
      for (var s = 0u; s < KERNEL; s = s + 1u) {
#if ${FORWARD}
        let kh = 2u * r + ph;
        let kw = 2u * s + pw;
#else
        let kh = 2u * (KERNEL - 1u - r) + ph;
        let kw = 2u * (KERNEL - 1u - s) + pw;
#endif
        g[r][s] = select(0.0, w[plane + min(kh, P.K - 1u) * P.K + min(kw, P.K - 1u)], kh < P.K && kw < P.K);
      }
    }
  }
  // along each filter row (KERNEL rows of ALPHA), then along each column
  var rows: array<Line, KERNEL>;
  for (var r = 0u; r < KERNEL; r = r + 1u) { rows[r] = phase_filter_line(g[r]); }
  let plane = P.reduced * width;
  for (var b = 0u; b < ALPHA; b = b + 1u) {
    var column: TapLine;
    for (var r = 0u; r < KERNEL; r = r + 1u) { column[r] = rows[r][b]; }
    let u_b = phase_filter_line(column);
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
