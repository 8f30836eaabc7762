// The loop of the elementwise kernels. A unit is a vec4 of consecutive values (VEC4) or one value (sizes
// that do not divide by 4); the shader defines `fn element(i: u32)` for unit i, with `V` its type. Each
// invocation takes UNITS units, strided by the grid's size so that neighbouring invocations touch
// neighbouring addresses (coalesced on GPUs). On lavapipe every storage access costs about ten
// instructions per lane whatever its width, and so does each invocation's setup: one value per invocation
// ran at 0.8 GB/s, 4 vec4s per invocation at 6-7 GB/s (docs/JOURNAL.md, "Elementwise kernels").
//!include lib_units

@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let stride = nwg.x * nwg.y * WG_SIZE;
  var i = (wid.x + wid.y * nwg.x) * WG_SIZE + lid;
  for (var k = 0u; k < ${UNITS}u; k = k + 1u) {
    if (i >= P.units) { return; }
    element(i);
    i = i + stride;
  }
}
