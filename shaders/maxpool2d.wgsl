// Max pooling, NCHW, -inf padding. Also writes the argmax (index within the input plane) for the backward.
@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG_SIZE + lid;
  if (i >= P.n) { return; }
  let ow = i % P.OW;
  let oh = (i / P.OW) % P.OH;
  let plane = i / (P.OW * P.OH);
  let base = plane * P.H * P.W;
  let ih0 = i32(oh * P.stride) - i32(P.pad);
  let iw0 = i32(ow * P.stride) - i32(P.pad);
  var best = -3.402823e38;
  var bestIdx = 0u;
  var found = false;
  for (var kh = 0; kh < i32(P.K); kh = kh + 1) {
    let ih = ih0 + kh;
    if (ih < 0 || ih >= i32(P.H)) { continue; }
    for (var kw = 0; kw < i32(P.K); kw = kw + 1) {
      let iw = iw0 + kw;
      if (iw < 0 || iw >= i32(P.W)) { continue; }
      let idx = u32(ih) * P.W + u32(iw);
      let v = x[base + idx];
      // NaN propagates, as in PyTorch.
      if (!found || v > best || v != v) {
        best = v;
        bestIdx = idx;
        found = true;
      }
    }
  }
  y[i] = best;
  argmax[i] = bestIdx;
}
