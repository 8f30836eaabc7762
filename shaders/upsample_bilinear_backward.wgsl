// Gradient of the bilinear resize as a gather: each input pixel sums dy over the outputs that read it,
// weighted exactly as the forward did (no atomics).
//!include lib_bilinear

fn output_range(i: u32, scale: f32, outSize: u32) -> vec2i {
  let lo = i32(floor((f32(i) - 0.5) / scale - 0.5)) - 1;
  let hi = i32(ceil((f32(i) + 1.5) / scale - 0.5)) + 1;
  return vec2i(max(lo, 0), min(hi, i32(outSize) - 1));
}

@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG_SIZE + lid;
  if (i >= P.n) { return; }
  let ix = i % P.IW;
  let iy = (i / P.IW) % P.IH;
  let plane = i / (P.IW * P.IH);
  let ry = output_range(iy, P.scaleH, P.OH);
  let rx = output_range(ix, P.scaleW, P.OW);
  let base = plane * P.OH * P.OW;
  var acc = 0.0;
  for (var oy = ry.x; oy <= ry.y; oy = oy + 1) {
    let wy = axis_weight(u32(oy), iy, P.scaleH, P.IH);
    if (wy == 0.0) { continue; }
    var row = 0.0;
    for (var ox = rx.x; ox <= rx.y; ox = ox + 1) {
      row = row + axis_weight(u32(ox), ix, P.scaleW, P.IW) * dy[base + u32(oy) * P.OW + u32(ox)];
    }
    acc = acc + wy * row;
  }
  dx[i] = acc;
}
