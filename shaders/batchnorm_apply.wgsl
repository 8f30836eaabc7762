// y = (x - mean[c]) * invstd[c] * gamma[c] + beta[c]. A vec4 unit lies in one channel (HW divides by 4).
//!include lib_elementwise
fn element(i: u32) {
  let c = (i * LANES / P.HW) % P.C;
  y[i] = (x[i] - saved[2u * c]) * saved[2u * c + 1u] * gamma[c] + beta[c];
}
