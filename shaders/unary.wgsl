// y = f(x) elementwise. f: ReLU, sigmoid, or the affine map a*x + b.
@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG_SIZE + lid;
  if (i >= P.n) { return; }
  let v = x[i];
#if ${RELU}
  y[i] = select(v, 0.0, v < 0.0); // not max(v, 0): WGSL's max returns 0 for NaN, PyTorch's ReLU keeps NaN
#elif ${SIGMOID}
  y[i] = 1.0 / (1.0 + exp(-v));
#else
  y[i] = P.a * v + P.b;
#endif
}
