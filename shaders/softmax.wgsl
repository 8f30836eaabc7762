// Softmax or log-softmax over each contiguous row of length L (rows = N*C, L = H*W), one workgroup per row,
// max-subtracted so that exp never overflows.
//!include lib_reduce

@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  let base = min(row, P.rows - 1u) * P.L;
  var m = -3.402823e38;
  for (var p = lid; p < P.L; p = p + WG_SIZE) { m = max(m, x[base + p]); }
  m = wg_max(lid, m);
  var s = 0.0;
  for (var p = lid; p < P.L; p = p + WG_SIZE) { s = s + exp(x[base + p] - m); }
  s = wg_sum(lid, s);
  if (row >= P.rows) { return; }
#if ${LOG}
  let lse = m + log(s);
  for (var p = lid; p < P.L; p = p + WG_SIZE) { y[base + p] = x[base + p] - lse; }
#else
  for (var p = lid; p < P.L; p = p + WG_SIZE) { y[base + p] = exp(x[base + p] - m) / s; }
#endif
}
