// Workgroup tree reductions over WG_SIZE invocations (a power of two). Call from uniform control flow.
//!include lib_float
var<workgroup> red_a: array<f32, WG_SIZE>;
var<workgroup> red_b: array<f32, WG_SIZE>;

fn wg_sum(lid: u32, v: f32) -> f32 {
  red_a[lid] = v;
  workgroupBarrier();
  for (var s = WG_SIZE / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) { red_a[lid] = red_a[lid] + red_a[lid + s]; }
    workgroupBarrier();
  }
  let r = red_a[0];
  workgroupBarrier();
  return r;
}

// Sums two values at once (one set of barriers for both).
fn wg_sum2(lid: u32, v: vec2f) -> vec2f {
  red_a[lid] = v.x;
  red_b[lid] = v.y;
  workgroupBarrier();
  for (var s = WG_SIZE / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) {
      red_a[lid] = red_a[lid] + red_a[lid + s];
      red_b[lid] = red_b[lid] + red_b[lid + s];
    }
    workgroupBarrier();
  }
  let r = vec2f(red_a[0], red_b[0]);
  workgroupBarrier();
  return r;
}

fn wg_max(lid: u32, v: f32) -> f32 {
  red_a[lid] = v;
  workgroupBarrier();
  for (var s = WG_SIZE / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) { red_a[lid] = max(red_a[lid], red_a[lid + s]); }
    workgroupBarrier();
  }
  let r = red_a[0];
  workgroupBarrier();
  return r;
}

// Max with the index of its first occurrence (ties go to the smaller index, as PyTorch's CPU kernels); a NaN
// is above every number (PyTorch's max pools propagate it).
var<workgroup> red_i: array<u32, WG_SIZE>;
fn wg_argmax(lid: u32, v: f32, i: u32) -> u32 {
  red_a[lid] = v;
  red_i[lid] = i;
  workgroupBarrier();
  for (var s = WG_SIZE / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) {
      let o = red_a[lid + s];
      let oi = red_i[lid + s];
      let a = red_a[lid];
      let oNaN = is_nan(o);
      let aNaN = is_nan(a);
      let above = (oNaN && !aNaN) || (!aNaN && o > a);
      let tie = (oNaN && aNaN) || (!oNaN && !aNaN && o == a);
      if (above || (tie && oi < red_i[lid])) {
        red_a[lid] = o;
        red_i[lid] = oi;
      }
    }
    workgroupBarrier();
  }
  let r = red_i[0];
  workgroupBarrier();
  return r;
}
