// How an invocation walks the row (a channel, a plane) it reduces: one invocation per row (PER_THREAD: no
// barriers, for software adapters; the caller returns past the last row) or one workgroup per row, whose
// lanes start at their index, stride by the workgroup and are summed by a tree after (lib_reduce).
// row_first(lid) == 0 picks the lane that writes the row's result.
#if ${PER_THREAD}
fn row_of(wid: vec3u, nwg: vec3u, lid: u32) -> u32 { return (wid.x + wid.y * nwg.x) * WG_SIZE + lid; }
fn row_first(lid: u32) -> u32 { return 0u; }
const ROW_STEP: u32 = 1u;
#else
fn row_of(wid: vec3u, nwg: vec3u, lid: u32) -> u32 { return wid.x; }
fn row_first(lid: u32) -> u32 { return lid; }
const ROW_STEP: u32 = WG_SIZE;
#endif
