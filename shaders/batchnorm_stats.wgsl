// Per-channel statistics, one workgroup or invocation per channel (lib_rows). Training: batch mean and
// biased variance (two passes over the data for accuracy), saved as [mean, 1/sqrt(var + eps)], and the
// running statistics updated as PyTorch does (unbiased variance, momentum). Eval: the saved pair comes
// from the running stats. x is read in units of 4 values where planes divide by 4 (lib_units).
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
  let writer = first == 0u;
#if ${TRAIN}
  let units = P.HW / LANES;
  let M = f32(P.N * P.HW);
  var s = V(0.0);
  for (var n = 0u; n < P.N; n = n + 1u) {
    let base = (n * P.C + c) * units;
    for (var p = first; p < units; p = p + step) { s = s + x[base + p]; }
  }
#if ${PER_THREAD}
  let mean = unit_sum(s) / M;
#else
  let mean = wg_sum(lid, unit_sum(s)) / M;
#endif
  var q = V(0.0);
  for (var n = 0u; n < P.N; n = n + 1u) {
    let base = (n * P.C + c) * units;
    for (var p = first; p < units; p = p + step) {
      let d = x[base + p] - mean;
      q = q + d * d;
    }
  }
#if ${PER_THREAD}
  let variance = unit_sum(q) / M;
#else
  let variance = wg_sum(lid, unit_sum(q)) / M;
#endif
  if (writer) {
    saved[2u * c] = mean;
    saved[2u * c + 1u] = 1.0 / sqrt(variance + P.eps);
    let unbiased = variance * M / max(M - 1.0, 1.0);
    runningMean[c] = (1.0 - P.momentum) * runningMean[c] + P.momentum * mean;
    runningVar[c] = (1.0 - P.momentum) * runningVar[c] + P.momentum * unbiased;
  }
#else
  if (writer) {
    saved[2u * c] = runningMean[c];
    saved[2u * c + 1u] = 1.0 / sqrt(runningVar[c] + P.eps);
  }
#endif
}
