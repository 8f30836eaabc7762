// Repacks conv weights [Cout, Cin, KH, KW] so that 4 consecutive channels of the register block are one
// vec4 load: FORWARD: packed[k, co] with k = (ci, kh, kw); otherwise (backward-data): packed[co, kh, kw, ci].
// The fast axis is padded with zeros to a multiple of the block height (P.pad4 vec4s per row).
@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG_SIZE + lid;
  let width = P.pad4 * 4u;
  if (i >= P.rows * width) { return; }
  let row = i / width;
  let lane = i % width;
  let KK = P.KH * P.KW;
#if ${FORWARD}
  // row = k = ci*KK + kk, lane = co
  let valid = lane < P.Cout;
  let src = min(lane, P.Cout - 1u) * P.Cin * KK + row;
#else
  // row = co*KK + kk, lane = ci
  let valid = lane < P.Cin;
  let co = row / KK;
  let kk = row % KK;
  let src = (co * P.Cin + min(lane, P.Cin - 1u)) * KK + kk;
#endif
  packed[i] = select(0.0, w[src], valid);
}
