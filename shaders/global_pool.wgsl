// Average or max over H*W of each (n, c) plane, one workgroup per plane. Max also writes its argmax.
//!include lib_reduce

@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let plane = wid.x + wid.y * nwg.x;
  let inRange = plane < P.planes;
  let base = min(plane, P.planes - 1u) * P.HW;
#if ${MAX}
  var best = -3.402823e38;
  var bestIdx = 0xffffffffu;
  for (var p = lid; p < P.HW; p = p + WG_SIZE) {
    let v = x[base + p];
    if (bestIdx == 0xffffffffu || v > best) { best = v; bestIdx = p; }
  }
  if (bestIdx == 0xffffffffu) { bestIdx = P.HW; }
  let winner = wg_argmax(lid, best, bestIdx);
  if (inRange && lid == 0u) {
    y[plane] = x[base + winner];
    argmax[plane] = winner;
  }
#else
  var s = 0.0;
  for (var p = lid; p < P.HW; p = p + WG_SIZE) { s = s + x[base + p]; }
  let total = wg_sum(lid, s);
  if (inRange && lid == 0u) { y[plane] = total / f32(P.HW); }
#endif
}
