// Weight gradient by Winograd F(3x3, 2x2), last pass: dW[o][c] = A^T M A (A^T = [1 1 1 0; 0 1 -1 0;
// 0 1 1 1]) of the 16 sums over tiles M[e][o][c], one invocation per (output channel, input channel).
@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG_SIZE + lid;
  if (i >= P.Cout * P.Cin) { return; }
  let o = i / P.Cin;
  let c = i % P.Cin;
  let plane = P.Cout * P.C4;
  var m: array<vec4f, 4>;
  for (var r = 0u; r < 4u; r = r + 1u) {
    let at = (r * 4u) * plane + o * P.C4 + c;
    m[r] = vec4f(M[at], M[at + plane], M[at + 2u * plane], M[at + 3u * plane]);
  }
  var a: array<vec4f, 3>;
  a[0] = m[0] + m[1] + m[2];
  a[1] = m[1] - m[2];
  a[2] = m[1] + m[2] + m[3];
  for (var kh = 0u; kh < 3u; kh = kh + 1u) {
    let v = a[kh];
    let row = vec3f(v.x + v.y + v.z, v.y - v.z, v.y + v.z + v.w);
    for (var kw = 0u; kw < 3u; kw = kw + 1u) {
      dw[i * 9u + kh * 3u + kw] = row[kw];
    }
  }
}
