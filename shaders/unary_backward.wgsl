// dx = dy * f'(x), written in terms of the forward output y.
//!include lib_elementwise
fn element(i: u32) {
  let out = y[i];
#if ${RELU}
  dx[i] = select(V(0.0), dy[i], out > V(0.0));
#else
  dx[i] = dy[i] * out * (1.0 - out);
#endif
}
