// Per channel: dbeta = sum(dy), dgamma = sum(dy * xhat), xhat = (x - mean) * invstd. One workgroup per channel.
//!include lib_reduce

@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let c = wid.x;
  let mean = saved[2u * c];
  let invstd = saved[2u * c + 1u];
  var acc = vec2f(0.0);
  for (var n = 0u; n < P.N; n = n + 1u) {
    let base = (n * P.C + c) * P.HW;
    for (var p = lid; p < P.HW; p = p + WG_SIZE) {
      let g = dy[base + p];
      acc = acc + vec2f(g, g * (x[base + p] - mean) * invstd);
    }
  }
  let total = wg_sum2(lid, acc);
  if (lid == 0u) {
    dbeta[c] = total.x;
    dgamma[c] = total.y;
  }
}
