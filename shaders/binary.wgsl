// out = a (+|*) b over a rank-4 output, with broadcasting expressed as zero strides. SAME: a and b have the
// output's shape, so every index is the unit's. With vec4 units (the last extent divides by 4), an operand
// broadcast along the last axis (A_SPLAT, B_SPLAT) is one value repeated; the other is a vec4.
//!include lib_elementwise
fn element(i: u32) {
#if ${SAME}
  out[i] = combine(a[i], b[i]);
#else
  let e = i * LANES;
  let i3 = e % P.d3;
  let r2 = e / P.d3;
  let i2 = r2 % P.d2;
  let r1 = r2 / P.d2;
  let i1 = r1 % P.d1;
  let i0 = r1 / P.d1;
  let ia = i0 * P.a0 + i1 * P.a1 + i2 * P.a2 + i3 * P.a3;
  let ib = i0 * P.b0 + i1 * P.b1 + i2 * P.b2 + i3 * P.b3;
#if ${A_SPLAT}
  let va = V(a[ia]);
#else
  let va = a[ia / LANES];
#endif
#if ${B_SPLAT}
  let vb = V(b[ib]);
#else
  let vb = b[ib / LANES];
#endif
  out[i] = combine(va, vb);
#endif
}

fn combine(x: V, y: V) -> V {
#if ${MUL}
  return x * y;
#else
  return x + y;
#endif
}
