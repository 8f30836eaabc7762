// dx[plane, ih, iw] = sum of dy over the windows whose argmax is this input pixel (a gather, no atomics).
@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG_SIZE + lid;
  if (i >= P.n) { return; }
  let HW = P.H * P.W;
  let idx = i % HW;
  let plane = i / HW;
  let ih = i32(idx / P.W);
  let iw = i32(idx % P.W);
  let S = i32(P.stride);
  // Windows oh with oh*S - pad <= ih <= oh*S - pad + K - 1.
  let ohLo = max(0, (ih + i32(P.pad) - i32(P.K) + S) / S);
  let ohHi = min(i32(P.OH) - 1, (ih + i32(P.pad)) / S);
  let owLo = max(0, (iw + i32(P.pad) - i32(P.K) + S) / S);
  let owHi = min(i32(P.OW) - 1, (iw + i32(P.pad)) / S);
  var acc = 0.0;
  let obase = plane * P.OH * P.OW;
  for (var oh = ohLo; oh <= ohHi; oh = oh + 1) {
    for (var ow = owLo; ow <= owHi; ow = ow + 1) {
      let o = obase + u32(oh) * P.OW + u32(ow);
      if (argmax[o] == idx) { acc = acc + dy[o]; }
    }
  }
  dx[i] = acc;
}
