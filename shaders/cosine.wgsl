// Cosine similarity along one axis of a [outer, L, inner] view: out[o, i] = <a, b> / (|a| |b| + eps).
// Channel cosine: outer = N, L = C, inner = H*W. Spatial cosine: outer = N*C, L = H*W, inner = 1.
// Saves (dot, |a|, |b|) per output for the backward.
@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let k = (wid.x + wid.y * nwg.x) * WG_SIZE + lid;
  if (k >= P.count) { return; }
  let o = k / P.inner;
  let i = k % P.inner;
  var idx = o * P.L * P.inner + i;
  var dot = 0.0;
  var aa = 0.0;
  var bb = 0.0;
  for (var l = 0u; l < P.L; l = l + 1u) {
    let va = a[idx];
    let vb = b[idx];
    dot = fma(va, vb, dot);
    aa = fma(va, va, aa);
    bb = fma(vb, vb, bb);
    idx = idx + P.inner;
  }
  let na = sqrt(aa);
  let nb = sqrt(bb);
  out[k] = dot / (na * nb + P.eps);
  saved[3u * k] = dot;
  saved[3u * k + 1u] = na;
  saved[3u * k + 2u] = nb;
}
