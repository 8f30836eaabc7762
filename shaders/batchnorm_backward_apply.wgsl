// Training: dx = gamma * invstd * (dy - dbeta / M - xhat * dgamma / M) (the batch statistics depend on x).
// Eval: dx = dy * gamma * invstd. A vec4 unit lies in one channel (HW divides by 4).
//!include lib_elementwise
fn element(i: u32) {
  let c = (i * LANES / P.HW) % P.C;
  let invstd = saved[2u * c + 1u];
#if ${TRAIN}
  let M = f32(P.units * LANES / P.C);
  let xhat = (x[i] - saved[2u * c]) * invstd;
  dx[i] = gamma[c] * invstd * (dy[i] - dbeta[c] / M - xhat * dgamma[c] / M);
#else
  dx[i] = dy[i] * gamma[c] * invstd;
#endif
}
