// out[i] = sum over s of partial[s * n + i] (second pass of a split reduction), with the convolution's
// epilogue when the partials are a split forward convolution (bias per channel, residual, ReLU).
@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG_SIZE + lid;
  if (i >= P.n) { return; }
  var acc = 0.0;
  for (var s = 0u; s < P.splits; s = s + 1u) { acc = acc + partial[s * P.n + i]; }
#if ${HAS_BIAS}
  acc = acc + bias[(i / P.OHW) % P.Cout];
#endif
#if ${RESIDUAL}
  acc = acc + res[i];
#endif
#if ${RELU}
  acc = select(acc, 0.0, acc < 0.0);
#endif
  out[i] = acc;
}
