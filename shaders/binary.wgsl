// out = a (+|*) b over a rank-4 output, with broadcasting expressed as zero strides.
@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG_SIZE + lid;
  if (i >= P.n) { return; }
  let i3 = i % P.d3;
  let r2 = i / P.d3;
  let i2 = r2 % P.d2;
  let r1 = r2 / P.d2;
  let i1 = r1 % P.d1;
  let i0 = r1 / P.d1;
  let ia = i0 * P.a0 + i1 * P.a1 + i2 * P.a2 + i3 * P.a3;
  let ib = i0 * P.b0 + i1 * P.b1 + i2 * P.b2 + i3 * P.b3;
#if ${MUL}
  out[i] = a[ia] * b[ib];
#else
  out[i] = a[ia] + b[ib];
#endif
}
