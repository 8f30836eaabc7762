// Bilinear resize, align_corners = false (PyTorch F.interpolate semantics), NCHW planes.
//!include lib_bilinear

@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG_SIZE + lid;
  if (i >= P.n) { return; }
  let ox = i % P.OW;
  let oy = (i / P.OW) % P.OH;
  let plane = i / (P.OW * P.OH);
  let sy = source_index(oy, P.scaleH, P.IH);
  let sx = source_index(ox, P.scaleW, P.IW);
  let base = plane * P.IH * P.IW;
  let r0 = base + sy.i0 * P.IW;
  let r1 = base + sy.i1 * P.IW;
  y[i] = (1.0 - sy.l1) * ((1.0 - sx.l1) * x[r0 + sx.i0] + sx.l1 * x[r0 + sx.i1])
       + sy.l1 * ((1.0 - sx.l1) * x[r1 + sx.i0] + sx.l1 * x[r1 + sx.i1]);
}
