// KL(P_t || P_s) per row, P = softmax(logits / T) over the row (length L = H*W, rows = N*C):
// kl[r] = sum_p P_t (log P_t - log P_s), with log-softmax computed as x/T - logsumexp(x/T).
// Saves both log-sum-exps per row for the backward. One workgroup per row (a tree reduction), or one
// invocation per row (PER_THREAD).
//!include lib_reduce

@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let invT = 1.0 / P.T;
#if ${PER_THREAD}
  // one invocation per row: no barriers (many short rows on a software adapter)
  let row = (wid.x + wid.y * nwg.x) * WG_SIZE + lid;
  if (row >= P.rows) { return; }
  let base = row * P.L;
  var mt = -3.402823e38;
  var ms = -3.402823e38;
  for (var p = 0u; p < P.L; p = p + 1u) {
    mt = max(mt, t[base + p] * invT);
    ms = max(ms, s[base + p] * invT);
  }
  var sums = vec2f(0.0);
  for (var p = 0u; p < P.L; p = p + 1u) {
    sums = sums + vec2f(exp(t[base + p] * invT - mt), exp(s[base + p] * invT - ms));
  }
  let lseT = mt + log(sums.x);
  let lseS = ms + log(sums.y);
  var acc = 0.0;
  for (var p = 0u; p < P.L; p = p + 1u) {
    let lt = t[base + p] * invT - lseT;
    let ls = s[base + p] * invT - lseS;
    acc = acc + exp(lt) * (lt - ls);
  }
  kl[row] = acc;
  saved[2u * row] = lseT;
  saved[2u * row + 1u] = lseS;
#else
  let row = wid.x + wid.y * nwg.x;
  let base = min(row, P.rows - 1u) * P.L;
  var mt = -3.402823e38;
  var ms = -3.402823e38;
  for (var p = lid; p < P.L; p = p + WG_SIZE) {
    mt = max(mt, t[base + p] * invT);
    ms = max(ms, s[base + p] * invT);
  }
  mt = wg_max(lid, mt);
  ms = wg_max(lid, ms);
  var sums = vec2f(0.0);
  for (var p = lid; p < P.L; p = p + WG_SIZE) {
    sums = sums + vec2f(exp(t[base + p] * invT - mt), exp(s[base + p] * invT - ms));
  }
  sums = wg_sum2(lid, sums);
  let lseT = mt + log(sums.x);
  let lseS = ms + log(sums.y);
  var acc = 0.0;
  for (var p = lid; p < P.L; p = p + WG_SIZE) {
    let lt = t[base + p] * invT - lseT;
    let ls = s[base + p] * invT - lseS;
    acc = acc + exp(lt) * (lt - ls);
  }
  acc = wg_sum(lid, acc);
  if (row < P.rows && lid == 0u) {
    kl[row] = acc;
    saved[2u * row] = lseT;
    saved[2u * row + 1u] = lseS;
  }
#endif
}
