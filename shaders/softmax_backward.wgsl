// Softmax: dx = y (dy - sum(dy y)). Log-softmax: dx = dy - exp(y) sum(dy). One workgroup per row.
//!include lib_reduce

@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  let base = min(row, P.rows - 1u) * P.L;
  var s = 0.0;
  for (var p = lid; p < P.L; p = p + WG_SIZE) {
#if ${LOG}
    s = s + dy[base + p];
#else
    s = s + dy[base + p] * y[base + p];
#endif
  }
  s = wg_sum(lid, s);
  if (row >= P.rows) { return; }
  for (var p = lid; p < P.L; p = p + WG_SIZE) {
#if ${LOG}
    dx[base + p] = dy[base + p] - exp(y[base + p]) * s;
#else
    dx[base + p] = y[base + p] * (dy[base + p] - s);
#endif
  }
}
