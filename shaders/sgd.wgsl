// torch.optim.SGD, one parameter tensor: g = grad + wd * p; v = (first step ? g : momentum * v + g);
// p -= lr * v. No dampening, no Nesterov.
@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG_SIZE + lid;
  if (i >= P.n) { return; }
  let g = grad[i] + P.weightDecay * param[i];
  var v = g;
  if (P.firstStep == 0u) { v = P.momentum * velocity[i] + g; }
  velocity[i] = v;
  param[i] = param[i] - P.lr * v;
}
