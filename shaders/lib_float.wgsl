// NaN by its bits: WGSL lets compilers assume values are never NaN, and `v != v` is folded to false
// (measured: a max pool over a window holding a NaN gave its largest number).
fn is_nan(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }
