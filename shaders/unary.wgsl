// y = f(x) elementwise. f: ReLU, sigmoid, or the affine map a*x + b.
//!include lib_elementwise
fn element(i: u32) {
  let v = x[i];
#if ${RELU}
  y[i] = select(v, V(0.0), v < V(0.0)); // not max(v, 0): WGSL's max returns 0 for NaN, PyTorch's ReLU keeps NaN
#elif ${SIGMOID}
  y[i] = 1.0 / (1.0 + exp(-v));
#else
  y[i] = P.a * v + P.b;
#endif
}
