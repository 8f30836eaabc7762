// y = act((x - mean[c]) * invstd[c] * gamma[c] + beta[c] (+ res)): a ResNet block's BN, its shortcut
// (RESIDUAL) and ReLU (RELU) in one pass over the feature map instead of three. A vec4 unit lies in one
// channel (HW divides by 4).
//!include lib_elementwise
fn element(i: u32) {
  let c = (i * LANES / P.HW) % P.C;
  var v = (x[i] - saved[2u * c]) * saved[2u * c + 1u] * gamma[c] + beta[c];
#if ${RESIDUAL}
  v = v + res[i];
#endif
#if ${RELU}
  v = select(v, V(0.0), v < V(0.0)); // keeps NaN, as PyTorch's ReLU (unary.wgsl)
#endif
  y[i] = v;
}
