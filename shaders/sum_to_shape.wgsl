// out = scale * (x summed over the axes where the output has extent 1), rank 4.
// One workgroup per output element (a tree reduction), or one invocation per output (PER_THREAD) when
// little is summed or, on software adapters, when there are many outputs.
//!include lib_reduce

fn input_base(o: u32) -> u32 {
  let c3 = o % P.o3;
  let q2 = o / P.o3;
  let c2 = q2 % P.o2;
  let q1 = q2 / P.o2;
  let c1 = q1 % P.o1;
  let c0 = q1 / P.o1;
  return c0 * P.s0 + c1 * P.s1 + c2 * P.s2 + c3 * P.s3;
}

fn reduced_offset(r: u32) -> u32 {
  let j3 = r % P.r3;
  let q2 = r / P.r3;
  let j2 = q2 % P.r2;
  let q1 = q2 / P.r2;
  let j1 = q1 % P.r1;
  let j0 = q1 / P.r1;
  return j0 * P.s0 + j1 * P.s1 + j2 * P.s2 + j3 * P.s3;
}

@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
#if ${PER_THREAD}
  let o = (wid.x + wid.y * nwg.x) * WG_SIZE + lid;
  if (o >= P.nOut) { return; }
  let base = input_base(o);
  var acc = 0.0;
  // the reduced axes as nested loops (no index divisions), in the order of the flat index r
  for (var j0 = 0u; j0 < P.r0; j0 = j0 + 1u) {
    for (var j1 = 0u; j1 < P.r1; j1 = j1 + 1u) {
      for (var j2 = 0u; j2 < P.r2; j2 = j2 + 1u) {
        var at = base + j0 * P.s0 + j1 * P.s1 + j2 * P.s2;
        for (var j3 = 0u; j3 < P.r3; j3 = j3 + 1u) {
          acc = acc + x[at];
          at = at + P.s3;
        }
      }
    }
  }
  out[o] = acc * P.scale;
#else
  let o = wid.x + wid.y * nwg.x;
  let inRange = o < P.nOut;
  let base = input_base(min(o, P.nOut - 1u));
  var acc = 0.0;
  if (inRange) {
    for (var r = lid; r < P.count; r = r + WG_SIZE) { acc = acc + x[base + reduced_offset(r)]; }
  }
  let total = wg_sum(lid, acc);
  if (inRange && lid == 0u) { out[o] = total * P.scale; }
#endif
}
