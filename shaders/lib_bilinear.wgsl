// Source position of output index o for align_corners = false: s = max(scale (o + 0.5) - 0.5, 0),
// neighbours i0 = floor(s) and i1 = i0 + 1 clamped to the edge, weight of i1 = s - i0.
struct Source { i0: u32, i1: u32, l1: f32 }

fn source_index(o: u32, scale: f32, inSize: u32) -> Source {
  let s = max(scale * (f32(o) + 0.5) - 0.5, 0.0);
  let i0 = min(u32(s), inSize - 1u);
  let i1 = select(i0, i0 + 1u, i0 < inSize - 1u);
  return Source(i0, i1, s - f32(i0));
}

// Weight with which input index i contributes to output index o along one axis.
fn axis_weight(o: u32, i: u32, scale: f32, inSize: u32) -> f32 {
  let src = source_index(o, scale, inSize);
  var w = 0.0;
  if (src.i0 == i) { w = w + 1.0 - src.l1; }
  if (src.i1 == i) { w = w + src.l1; }
  return w;
}
