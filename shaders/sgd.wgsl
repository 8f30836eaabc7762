// torch.optim.SGD, one parameter tensor: g = grad + wd * p; v = (first step ? g : momentum * v + g);
// p -= lr * v. No dampening, no Nesterov.
//!include lib_elementwise
fn element(i: u32) {
  let g = grad[i] + P.weightDecay * param[i];
  var v = g;
  if (P.firstStep == 0u) { v = P.momentum * velocity[i] + g; }
  velocity[i] = v;
  param[i] = param[i] - P.lr * v;
}
