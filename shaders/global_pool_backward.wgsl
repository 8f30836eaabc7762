// Average: dx = dy[plane] / HW. Max: dy[plane] goes to the argmax pixel only.
@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG_SIZE + lid;
  if (i >= P.n) { return; }
  let plane = i / P.HW;
#if ${MAX}
  dx[i] = select(0.0, dy[plane], argmax[plane] == i % P.HW);
#else
  dx[i] = dy[plane] / f32(P.HW);
#endif
}
