// dx = dy * f'(x), written in terms of the forward output y.
@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG_SIZE + lid;
  if (i >= P.n) { return; }
  let out = y[i];
#if ${RELU}
  dx[i] = select(0.0, dy[i], out > 0.0);
#else
  dx[i] = dy[i] * out * (1.0 - out);
#endif
}
