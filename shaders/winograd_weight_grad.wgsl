// Weight gradient by Winograd F(3x3, TILE x TILE), last pass: dW[o][c] = G^T M G (lib_winograd) of the
// ALPHA^2 sums over tiles M[e][o][c], one invocation per (output channel, input channel). PHASES: a
// stride-2 conv's, by the transposed algorithm of its forward over the input's phases (tap_line).
//!include lib_winograd

@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG_SIZE + lid;
#if ${PHASES}
  // over the phases of a stride-2 conv's input: one invocation per (output channel, phase channel c = 4 ci
  // + 2 ph + pw), whose KERNEL x KERNEL taps are w[o, ci, 2r + ph, 2s + pw] (those inside the P.K x P.K
  // kernel), each tap of dW written by exactly one invocation
  if (i >= P.Cout * P.C4) { return; }
  let o = i / P.C4;
  let c = i % P.C4;
#else
  if (i >= P.Cout * P.Cin) { return; }
  let o = i / P.Cin;
  let c = i % P.Cin;
#endif
  let plane = P.Cout * P.C4;
  // along each row of sums (ALPHA rows of KERNEL taps), then along each column
  var rows: array<TapLine, ALPHA>;
  for (var a = 0u; a < ALPHA; a = a + 1u) {
    var m: Line;
    for (var b = 0u; b < ALPHA; b = b + 1u) { m[b] = M[(a * ALPHA + b) * plane + o * P.C4 + c]; }
    rows[a] = tap_line(m);
  }
  for (var s = 0u; s < KERNEL; s = s + 1u) {
    var column: Line;
    for (var a = 0u; a < ALPHA; a = a + 1u) { column[a] = rows[a][s]; }
    let taps = tap_line(column);
    for (var r = 0u; r < KERNEL; r = r + 1u) {
#if ${PHASES}
      let kh = 2u * r + (c / 2u) % 2u;
      let kw = 2u * s + c % 2u;
      if (kh < P.K && kw < P.K) { dw[((o * P.Cin + c / 4u) * P.K + kh) * P.K + kw] = taps[r]; }
#else
      dw[i * 9u + r * 3u + s] = taps[r];
#endif
    }
  }
}
