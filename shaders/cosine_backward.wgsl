// With D = |a||b| + eps and c = dot / D:
//   da = g (b / D - c |b| a / (|a| D)),  db = g (a / D - c |a| b / (|b| D)).
@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.x + wid.y * nwg.x) * WG_SIZE + lid;
  if (idx >= P.n) { return; }
  let i = idx % P.inner;
  let o = idx / (P.L * P.inner);
  let k = o * P.inner + i;
  let dot = saved[3u * k];
  let na = saved[3u * k + 1u];
  let nb = saved[3u * k + 2u];
  let D = na * nb + P.eps;
  let c = dot / D;
  let g = dy[k];
  let va = a[idx];
  let vb = b[idx];
  let ka = select(0.0, c * nb / (na * D), na > 0.0);
  let kb = select(0.0, c * na / (nb * D), nb > 0.0);
#if ${NEED_A}
  da[idx] = g * (vb / D - ka * va);
#endif
#if ${NEED_B}
  db[idx] = g * (va / D - kb * vb);
#endif
}
