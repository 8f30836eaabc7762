// y = (x - mean[c]) * invstd[c] * gamma[c] + beta[c]
@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG_SIZE + lid;
  if (i >= P.n) { return; }
  let c = (i / P.HW) % P.C;
  y[i] = (x[i] - saved[2u * c]) * saved[2u * c + 1u] * gamma[c] + beta[c];
}
