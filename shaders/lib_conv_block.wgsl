// The register-blocked step shared by the forward and backward-data convolutions: the TM output
// channels of one packed weight row (TM/4 vec4 loads, `wp`) times 4 pixels' values `v`, added to the
// invocation's TM x 4 accumulators.
fn accumulate_block(acc: ptr<function, array<vec4f, TM>>, row: u32, v: vec4f) {
  for (var q = 0u; q < TM / 4u; q = q + 1u) {
    let wv = wp[row + q];
    (*acc)[4u * q] = fma(vec4f(wv.x), v, (*acc)[4u * q]);
    (*acc)[4u * q + 1u] = fma(vec4f(wv.y), v, (*acc)[4u * q + 1u]);
    (*acc)[4u * q + 2u] = fma(vec4f(wv.z), v, (*acc)[4u * q + 2u]);
    (*acc)[4u * q + 3u] = fma(vec4f(wv.w), v, (*acc)[4u * q + 3u]);
  }
}
