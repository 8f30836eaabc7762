// dx[plane, ih, iw] = sum of dy over the windows whose argmax is this input pixel (a gather, no atomics).
// An invocation owns a STRIDE x STRIDE block of input pixels: the windows that cover the block (2 x 2 for
// ResNet's 3/2/1) are found once, and each window's argmax and gradient are loaded once for all the
// block's pixels (per pixel, the bounds took four divisions and each window two loads).
const S: u32 = ${STRIDE}u;

@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG_SIZE + lid;
  if (i >= P.blocks) { return; }
  let bw = i % P.BW;
  let bh = (i / P.BW) % P.BH;
  let plane = i / (P.BW * P.BH);
  let ih0 = i32(bh * S);
  let iw0 = i32(bw * S);
  let pad = i32(P.pad);
  let K = i32(P.K);
  // windows o with o*S - pad <= last pixel of the block and o*S - pad + K - 1 >= its first
  let ohLo = max(0, (ih0 + pad - K + i32(S)) / i32(S));
  let ohHi = min(i32(P.OH) - 1, (ih0 + i32(S) - 1 + pad) / i32(S));
  let owLo = max(0, (iw0 + pad - K + i32(S)) / i32(S));
  let owHi = min(i32(P.OW) - 1, (iw0 + i32(S) - 1 + pad) / i32(S));
  var acc: array<f32, S * S>;
  let obase = plane * P.OH * P.OW;
  let first = u32(ih0) * P.W + u32(iw0); // in-plane index of the block's first pixel
  for (var oh = ohLo; oh <= ohHi; oh = oh + 1) {
    for (var ow = owLo; ow <= owHi; ow = ow + 1) {
      let o = obase + u32(oh) * P.OW + u32(ow);
      let a = argmax[o];
      let g = dy[o];
      for (var r = 0u; r < S; r = r + 1u) {
        for (var c = 0u; c < S; c = c + 1u) {
          if (a == first + r * P.W + c) { acc[r * S + c] = acc[r * S + c] + g; }
        }
      }
    }
  }
  let dbase = plane * P.H * P.W;
  for (var r = 0u; r < S; r = r + 1u) {
    for (var c = 0u; c < S; c = c + 1u) {
      if (u32(ih0) + r < P.H && u32(iw0) + c < P.W) { dx[dbase + first + r * P.W + c] = acc[r * S + c]; }
    }
  }
}
