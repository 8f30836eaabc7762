// The unit of a kernel that reads or writes 4 consecutive values at once (VEC4) or one at a time.
#if ${VEC4}
alias V = vec4f;
const LANES: u32 = 4u;
fn unit_sum(v: V) -> f32 { return (v.x + v.y) + (v.z + v.w); }
#else
alias V = f32;
const LANES: u32 = 1u;
fn unit_sum(v: V) -> f32 { return v; }
#endif
