// The register-blocked step shared by the direct convolutions and the Winograd GEMM: the TM rows of one
// packed weight row (TM/4 vec4 loads of `wp`, at an address uniform across the workgroup) times the
// invocation's QUADS vec4s of values `v` (4 pixels or columns each), added to its TM x QUADS accumulators
// acc[q * TM + r]. Each loaded value feeds TM (or 4 * QUADS) multiply-adds; on software rasterisers that
// ratio is the kernel's speed (docs/JOURNAL.md, "What lavapipe makes of a kernel").
fn accumulate_block(acc: ptr<function, array<vec4f, TM * QUADS>>, row: u32, v: ptr<function, array<vec4f, QUADS>>) {
  for (var b = 0u; b < TM / 4u; b = b + 1u) {
    let wv = wp[row + b];
    for (var q = 0u; q < QUADS; q = q + 1u) {
      let a = q * TM + 4u * b;
      (*acc)[a] = fma(vec4f(wv.x), (*v)[q], (*acc)[a]);
      (*acc)[a + 1u] = fma(vec4f(wv.y), (*v)[q], (*acc)[a + 1u]);
      (*acc)[a + 2u] = fma(vec4f(wv.z), (*v)[q], (*acc)[a + 2u]);
      (*acc)[a + 3u] = fma(vec4f(wv.w), (*v)[q], (*acc)[a + 3u]);
    }
  }
}
