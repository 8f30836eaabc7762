//!include lib_elementwise
fn element(i: u32) {
  y[i] = V(P.value);
}
