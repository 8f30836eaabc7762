// dx[n, c, p] = dy_mean[n, p] / C + (c == argmax[n, p] ? dy_max[n, p] : 0)
@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG_SIZE + lid;
  if (i >= P.n) { return; }
  let p = i % P.HW;
  let c = (i / P.HW) % P.C;
  let n = i / (P.HW * P.C);
  var oc = n * P.outC * P.HW + p;
  var g = 0.0;
#if ${MEAN}
  g = g + dy[oc] / f32(P.C);
  oc = oc + P.HW;
#endif
#if ${MAX}
  g = g + select(0.0, dy[oc], argmax[n * P.HW + p] == c);
#endif
  dx[i] = g;
}
