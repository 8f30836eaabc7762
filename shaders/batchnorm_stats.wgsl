// Per-channel statistics, one workgroup per channel. Training: batch mean and biased variance
// (two passes over the data for accuracy), saved as [mean, 1/sqrt(var + eps)], and the running statistics
// updated as PyTorch does (unbiased variance, momentum). Eval: the saved pair comes from the running stats.
//!include lib_reduce

@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let c = wid.x;
#if ${TRAIN}
  let HW = P.HW;
  let M = f32(P.N * HW);
  var s = 0.0;
  for (var n = 0u; n < P.N; n = n + 1u) {
    let base = (n * P.C + c) * HW;
    for (var p = lid; p < HW; p = p + WG_SIZE) { s = s + x[base + p]; }
  }
  let mean = wg_sum(lid, s) / M;
  var q = 0.0;
  for (var n = 0u; n < P.N; n = n + 1u) {
    let base = (n * P.C + c) * HW;
    for (var p = lid; p < HW; p = p + WG_SIZE) {
      let d = x[base + p] - mean;
      q = q + d * d;
    }
  }
  let variance = wg_sum(lid, q) / M;
  if (lid == 0u) {
    saved[2u * c] = mean;
    saved[2u * c + 1u] = 1.0 / sqrt(variance + P.eps);
    let unbiased = variance * M / max(M - 1.0, 1.0);
    runningMean[c] = (1.0 - P.momentum) * runningMean[c] + P.momentum * mean;
    runningVar[c] = (1.0 - P.momentum) * runningVar[c] + P.momentum * unbiased;
  }
#else
  if (lid == 0u) {
    saved[2u * c] = runningMean[c];
    saved[2u * c + 1u] = 1.0 / sqrt(runningVar[c] + P.eps);
  }
#endif
}
