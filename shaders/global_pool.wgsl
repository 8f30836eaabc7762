// Average or max over H*W of each (n, c) plane, one workgroup per plane (a tree reduction) or one
// invocation per plane (PER_THREAD). Max also writes its argmax (the first of equal maxima).
//!include lib_reduce

// Whether v replaces the best of a max scan: a larger value, or the first NaN (a NaN best stays, as PyTorch's).
fn takes_max(best: f32, v: f32) -> bool { return !is_nan(best) && (v > best || is_nan(v)); }

@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
#if ${PER_THREAD}
  // one invocation per plane: no barriers (many small planes on a software adapter)
  let plane = (wid.x + wid.y * nwg.x) * WG_SIZE + lid;
  if (plane >= P.planes) { return; }
  let base = plane * P.HW;
#if ${MAX}
  var best = x[base];
  var bestIdx = 0u;
  for (var p = 1u; p < P.HW; p = p + 1u) {
    let v = x[base + p];
    if (takes_max(best, v)) { best = v; bestIdx = p; }
  }
  y[plane] = best;
  argmax[plane] = bestIdx;
#else
  var s = 0.0;
  for (var p = 0u; p < P.HW; p = p + 1u) { s = s + x[base + p]; }
  y[plane] = s / f32(P.HW);
#endif
#else
  let plane = wid.x + wid.y * nwg.x;
  let inRange = plane < P.planes;
  let base = min(plane, P.planes - 1u) * P.HW;
#if ${MAX}
  var best = -3.402823e38;
  var bestIdx = 0xffffffffu;
  for (var p = lid; p < P.HW; p = p + WG_SIZE) {
    let v = x[base + p];
    if (bestIdx == 0xffffffffu || takes_max(best, v)) { best = v; bestIdx = p; }
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
#endif
}
