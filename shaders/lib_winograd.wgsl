// The transforms of Winograd F(TILE x TILE, 3x3) (Lavin & Gray 2016), one line of a tile at a time: a 2-D
// transform X' = T X T^T is the line transform applied to every row, then to every column. F(2x2, 3x3)
// uses the points 0, 1, -1 (and infinity), F(4x4, 3x3) also 2 and -2: 36 products per 16 outputs instead
// of 16 per 4, at the price of larger constants (more rounding; measured in docs/JOURNAL.md).
// The weight gradient is the transposed algorithm, F(3x3, TILE x TILE): the gradient of
// sum(dy . A^T [(G g) . (B^T d)]) with respect to g is G^T [(A dy) . (B^T d)], so it reuses the input
// transform and swaps the roles of A and G (gradient_line, weight_gradient_line).
// KERNEL 4 (K4): F(3x3, 4x4), the same transposition used as a forward (the ResNet stem's 7x7 stride-2
// conv split into its four stride-2 phases, each a 4x4 stride-1 conv): y = G^T [(A g) . (B^T d)], the
// filter transformed by A (gradient_line) and the products by G^T (weight_gradient_line).
// KERNEL 2 (ALPHA5): F(4x4, 2x2), points 0, 1, -1, 2 (and infinity), for a 3x3 stride-2 conv split into its
// four stride-2 phases, whose filters have at most 2x2 taps: 25 products per 16 outputs and phase, 100 for
// the four, instead of the direct conv's 144. B^T's rows are scaled to integers and G's by the inverse.
// ALPHA5 with KERNEL 3: F(3x3, 3x3) on the same points and B^T (G and A^T its own: derived in exact
// rationals, `tools/winograd_f33.py`), 25 products per 9 outputs, for a forward pass (no weight gradient).
const TILE: u32 = ${TILE}u;       // outputs per tile side
const KERNEL: u32 = ${KERNEL}u;   // filter side
const ALPHA: u32 = TILE + KERNEL - 1u; // input patch side = transformed tile side
alias Line = array<f32, ALPHA>;
alias OutLine = array<f32, TILE>;
// The line that A takes: a line of a TILE x TILE tile of dy (F(3x3, TILE x TILE)), or a filter line (K4).
alias ShortLine = array<f32, ALPHA - 2u>;

// B^T d: one line of an input patch
fn input_line(d: Line) -> Line {
  var b: Line;
#if ${ALPHA6}
  // B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
  b[0] = 4.0 * d[0] - 5.0 * d[2] + d[4];
  b[1] = d[3] + d[4] - 4.0 * (d[1] + d[2]);
  b[2] = d[4] - d[3] + 4.0 * (d[1] - d[2]);
  b[3] = d[4] - d[2] + 2.0 * (d[3] - d[1]);
  b[4] = d[4] - d[2] + 2.0 * (d[1] - d[3]);
  b[5] = 4.0 * d[1] - 5.0 * d[3] + d[5];
#elif ${ALPHA5}
  // B^T = [2 -1 -2 1 0; 0 2 1 -1 0; 0 -2 3 -1 0; 0 -1 0 1 0; 0 2 -1 -2 1]
  b[0] = 2.0 * (d[0] - d[2]) + d[3] - d[1];
  b[1] = 2.0 * d[1] + d[2] - d[3];
  b[2] = 3.0 * d[2] - 2.0 * d[1] - d[3];
  b[3] = d[3] - d[1];
  b[4] = 2.0 * (d[1] - d[3]) - d[2] + d[4];
#else
  // B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
  b[0] = d[0] - d[2];
  b[1] = d[1] + d[2];
  b[2] = d[2] - d[1];
  b[3] = d[1] - d[3];
#endif
  return b;
}

// G g: one line of a 3x3 filter
fn weight_line(g: vec3f) -> Line {
  var u: Line;
#if ${ALPHA6}
  // G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
  let even = g.x + g.z;
  u[0] = 0.25 * g.x;
  u[1] = -(even + g.y) / 6.0;
  u[2] = -(even - g.y) / 6.0;
  let quarter = g.x / 24.0 + g.z / 6.0;
  u[3] = quarter + g.y / 12.0;
  u[4] = quarter - g.y / 12.0;
  u[5] = g.z;
#elif ${ALPHA5}
  // F(3x3, 3x3) (the points and B^T of F(4x4, 2x2)): G = [1/2 0 0; 1/2 1/2 1/2; 1/6 -1/6 1/6; 1/6 1/3 2/3; 0 0 1]
  let even = g.x + g.z;
  u[0] = 0.5 * g.x;
  u[1] = 0.5 * (even + g.y);
  u[2] = (even - g.y) / 6.0;
  u[3] = (g.x + 2.0 * g.y + 4.0 * g.z) / 6.0;
  u[4] = g.z;
#else
  // G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]
  u[0] = g.x;
  u[1] = 0.5 * (g.x + g.y + g.z);
  u[2] = 0.5 * (g.x - g.y + g.z);
  u[3] = g.z;
#endif
  return u;
}

#if ${ALPHA6}
// A^T m of F(4x4, 3x3): 6 products to 4 outputs (or, for the stem's weight gradient, to its 4 phase taps)
// A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
fn a6_line(m: Line) -> array<f32, 4> {
  let s12 = m[1] + m[2];
  let d12 = m[1] - m[2];
  let s34 = m[3] + m[4];
  let d34 = m[3] - m[4];
  return array<f32, 4>(m[0] + s12 + s34, d12 + 2.0 * d34, s12 + 4.0 * s34, d12 + 8.0 * d34 + m[5]);
}
#endif

// A^T m: one line of a tile of products, to TILE outputs
fn output_line(m: Line) -> OutLine {
  var y: OutLine;
#if ${K4}
  // F(3x3, 4x4): G^T m
  let taps = weight_gradient_line(m);
  y[0] = taps.x;
  y[1] = taps.y;
  y[2] = taps.z;
#elif ${ALPHA6}
  y = a6_line(m);
#elif ${ALPHA5}
  let s12 = m[1] + m[2];
  let d12 = m[1] - m[2];
#if ${K2}
  // F(4x4, 2x2): A^T = [1 1 1 1 0; 0 1 -1 2 0; 0 1 1 4 0; 0 1 -1 8 1]
  y[0] = m[0] + s12 + m[3];
  y[1] = d12 + 2.0 * m[3];
  y[2] = s12 + 4.0 * m[3];
  y[3] = d12 + 8.0 * m[3] + m[4];
#else
  // F(3x3, 3x3): A^T = [1 1 1 1 0; 0 1 -1 2 0; 0 1 1 4 1]
  y[0] = m[0] + s12 + m[3];
  y[1] = d12 + 2.0 * m[3];
  y[2] = s12 + 4.0 * m[3] + m[4];
#endif
#else
  // A^T = [1 1 1 0; 0 1 -1 -1]
  y[0] = m[0] + m[1] + m[2];
  y[1] = m[1] - m[2] - m[3];
#endif
  return y;
}

// A dy: one line of a TILE x TILE tile of the output gradient (K4: one line of a 4x4 filter), to a line
// of the transformed tile
fn gradient_line(y: ShortLine) -> Line {
  var e: Line;
#if ${ALPHA6}
  // A = (A^T)^T above
  let even = y[0] + y[2];
  let odd = y[1] + y[3];
  let even4 = y[0] + 4.0 * y[2];
  let odd4 = 2.0 * y[1] + 8.0 * y[3];
  e[0] = y[0];
  e[1] = even + odd;
  e[2] = even - odd;
  e[3] = even4 + odd4;
  e[4] = even4 - odd4;
  e[5] = y[3];
#else
  // diag(1, .5, .5, 1) A: the halves of G^T moved here (weight_gradient_line then has none)
  e[0] = y[0];
  e[1] = 0.5 * (y[0] + y[1]);
  e[2] = 0.5 * (y[0] - y[1]);
  e[3] = -y[1];
#endif
  return e;
}

// G^T m: one line of the summed products, to one line (3 taps) of the weight gradient
fn weight_gradient_line(m: Line) -> vec3f {
#if ${ALPHA6}
  let s12 = m[1] + m[2];
  let s34 = m[3] + m[4];
  return vec3f(0.25 * m[0] - s12 / 6.0 + s34 / 24.0,
               (m[2] - m[1]) / 6.0 + (m[3] - m[4]) / 12.0,
               (s34 - s12) / 6.0 + m[5]);
#else
  // G^T diag(1, 2, 2, 1) = [1 1 1 0; 0 1 -1 0; 0 1 1 1]
  return vec3f(m[0] + m[1] + m[2], m[1] - m[2], m[1] + m[2] + m[3]);
#endif
}

// The weight gradient's transform of one line of a TILE x TILE tile of dy: A dy for F(3x3, t x t); over
// the phases, that of the transposed forward: G dy for the stem (K4, 3-output tiles), A dy of F(4x4, 2x2)
// for a 3x3 stride-2 conv (K2)
fn dy_line(y: OutLine) -> Line {
#if ${K4}
  return weight_line(vec3f(y[0], y[1], y[2]));
#elif ${K2}
  // A = (A^T)^T of F(4x4, 2x2)
  return Line(y[0], y[0] + y[1] + y[2] + y[3], y[0] - y[1] + y[2] - y[3], y[0] + 2.0 * y[1] + 4.0 * y[2] + 8.0 * y[3], y[3]);
#else
  return gradient_line(y);
#endif
}

// The forward's transform of one line of a phase's filter (KERNEL taps) over the phases: A for the stem
// (K4, F(3x3, 4x4)), G of F(4x4, 2x2) for a 3x3 stride-2 conv (K2: G = [1/2 0; 1/2 1/2; 1/6 -1/6; 1/6
// 1/3; 0 1]); tap_line below is its transpose
fn phase_filter_line(g: TapLine) -> Line {
#if ${K4}
  return gradient_line(g);
#elif ${K2}
  return Line(0.5 * g[0], 0.5 * (g[0] + g[1]), (g[0] - g[1]) / 6.0, (g[0] + 2.0 * g[1]) / 6.0, g[1]);
#else
  return weight_line(vec3f(g[0], g[1], g[2]));
#endif
}

// The weight gradient's last transform over the phases: one line of summed products to one line of a
// phase filter's KERNEL taps, A^T for the stem (K4), G^T of F(4x4, 2x2) for a 3x3 stride-2 conv (K2)
alias TapLine = array<f32, KERNEL>;
fn tap_line(m: Line) -> TapLine {
#if ${K4}
  return a6_line(m);
#elif ${K2}
  return TapLine(0.5 * (m[0] + m[1]) + (m[2] + m[3]) / 6.0, 0.5 * m[1] - m[2] / 6.0 + m[3] / 3.0 + m[4]);
#else
  let taps = weight_gradient_line(m);
  return TapLine(taps.x, taps.y, taps.z);
#endif
}
