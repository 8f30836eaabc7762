// d kl / d s_p = (P_s - P_t) / T;  d kl / d t_p = P_t (log P_t - log P_s - kl) / T; times the row's dy.
@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG_SIZE + lid;
  if (i >= P.n) { return; }
  let row = i / P.L;
  let invT = 1.0 / P.T;
  let lt = t[i] * invT - saved[2u * row];
  let ls = s[i] * invT - saved[2u * row + 1u];
  let pt = exp(lt);
  let g = dy[row] * invT;
#if ${NEED_S}
  ds[i] = g * (exp(ls) - pt);
#endif
#if ${NEED_T}
  dt[i] = g * pt * (lt - ls - kl[row]);
#endif
}
