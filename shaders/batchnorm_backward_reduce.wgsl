// Per channel: dbeta = sum(g), dgamma = sum(g * xhat), xhat = (x - mean) * invstd, with g the gradient at
// the BN's output: dy, or with a fused ReLU (RELU) dy where the saved output y is positive, which is then
// also written out (`masked`: the apply pass's input and the shortcut's gradient). One workgroup or
// invocation per channel (lib_rows); x, dy and y are read in units of 4 values where planes divide by 4
// (lib_units).
//!include lib_reduce
//!include lib_rows
//!include lib_units

@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let c = row_of(wid, nwg, lid);
#if ${PER_THREAD}
  if (c >= P.C) { return; }
#endif
  let first = row_first(lid);
  let step = ROW_STEP;
  let mean = saved[2u * c];
  let invstd = saved[2u * c + 1u];
  let units = P.HW / LANES;
  var sumDy = V(0.0);
  var sumDyXhat = V(0.0);
  for (var n = 0u; n < P.N; n = n + 1u) {
    let base = (n * P.C + c) * units;
    for (var p = first; p < units; p = p + step) {
#if ${RELU}
      let g = select(V(0.0), dy[base + p], y[base + p] > V(0.0));
      masked[base + p] = g;
#else
      let g = dy[base + p];
#endif
      sumDy = sumDy + g;
      sumDyXhat = sumDyXhat + g * (x[base + p] - mean) * invstd;
    }
  }
#if ${PER_THREAD}
  dbeta[c] = unit_sum(sumDy);
  dgamma[c] = unit_sum(sumDyXhat);
#else
  let total = wg_sum2(lid, vec2f(unit_sum(sumDy), unit_sum(sumDyXhat)));
  if (lid == 0u) {
    dbeta[c] = total.x;
    dgamma[c] = total.y;
  }
#endif
}
