// Mean and/or max over channels for each (n, pixel): out[n, offset(+1), p]. Max also writes the argmax channel.
@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG_SIZE + lid;
  if (i >= P.n) { return; }
  let p = i % P.HW;
  let n = i / P.HW;
  var s = 0.0;
  var best = -3.402823e38;
  var bestC = 0u;
  var idx = n * P.C * P.HW + p;
  for (var c = 0u; c < P.C; c = c + 1u) {
    let v = x[idx];
    s = s + v;
    if (c == 0u || v > best) { best = v; bestC = c; }
    idx = idx + P.HW;
  }
  var oc = n * P.outC * P.HW + p;
#if ${MEAN}
  y[oc] = s / f32(P.C);
  oc = oc + P.HW;
#endif
#if ${MAX}
  y[oc] = best;
  argmax[i] = bestC;
#endif
}
