// Training: dx = gamma * invstd * (dy - dbeta / M - xhat * dgamma / M) (the batch statistics depend on x).
// Eval: dx = dy * gamma * invstd.
@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG_SIZE + lid;
  if (i >= P.n) { return; }
  let c = (i / P.HW) % P.C;
  let invstd = saved[2u * c + 1u];
#if ${TRAIN}
  let M = f32(P.n / P.C);
  let xhat = (x[i] - saved[2u * c]) * invstd;
  dx[i] = gamma[c] * invstd * (dy[i] - dbeta[c] / M - xhat * dgamma[c] / M);
#else
  dx[i] = dy[i] * gamma[c] * invstd;
#endif
}
