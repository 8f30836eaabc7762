#!/usr/bin/env python3
"""PyTorch reference values for every engine op: forward outputs and input gradients.

Run with Debian's PyTorch (apt-get install python3-torch): /usr/bin/python3 tools/make_op_fixtures.py
Writes test/fixtures/ops.json. Each case holds the inputs, the upstream gradient `grad_out`, the output,
and the gradient of sum(output * grad_out) with respect to each input that requires one.
"""
import base64
import json
import os

import torch
import torch.nn.functional as F

torch.manual_seed(1234)
torch.set_num_threads(2)
OUT = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'ops.json')


def enc(t):
    """A float32 tensor as its shape and little-endian bytes in base64 (exact, compact)."""
    t = t.detach().to(torch.float32).contiguous()
    return {'shape': list(t.shape), 'f32': base64.b64encode(t.numpy().astype('<f4').tobytes()).decode()}


def rnd(*shape, scale=1.0):
    return (torch.randn(*shape) * scale).requires_grad_(True)


cases = []


def case(op, config, inputs, fn, grad_inputs=None, extra=None):
    out = fn(**inputs)
    g = torch.randn_like(out)
    grads = {}
    names = grad_inputs if grad_inputs is not None else [k for k, v in inputs.items() if isinstance(v, torch.Tensor) and v.requires_grad]
    if names:
        gs = torch.autograd.grad(out, [inputs[k] for k in names], g, allow_unused=True)
        grads = {k: enc(v) for k, v in zip(names, gs) if v is not None}
    c = {'op': op, 'config': config,
         'inputs': {k: enc(v) for k, v in inputs.items() if isinstance(v, torch.Tensor)},
         'grad_out': enc(g), 'output': enc(out), 'grads': grads}
    if extra:
        c.update(extra)
    cases.append(c)


# conv2d: the ResNet shapes in miniature (odd sizes), plus the 7x7 2->1 spatial-attention conv
for (n, cin, h, w, cout, k, s, p, bias) in [
    (3, 3, 7, 5, 13, 3, 1, 1, True),
    (1, 13, 9, 7, 3, 3, 2, 1, False),
    (3, 3, 11, 9, 5, 7, 2, 3, False),
    (2, 13, 7, 5, 6, 1, 2, 0, False),
    (3, 2, 7, 5, 1, 7, 1, 3, False),
]:
    inputs = {'x': rnd(n, cin, h, w), 'weight': rnd(cout, cin, k, k, scale=0.3)}
    if bias:
        inputs['bias'] = rnd(cout)
    case('conv2d', {'stride': s, 'padding': p},
         inputs, lambda x, weight, bias=None: F.conv2d(x, weight, bias, stride=s, padding=p))

# batch norm, training (batch statistics, running stats updated) and eval
for training in (True, False):
    x = rnd(3, 13, 7, 5, scale=2.0)
    with torch.no_grad():
        x += torch.linspace(-1, 1, 13).view(1, 13, 1, 1)
    weight = (torch.rand(13) + 0.5).requires_grad_(True)
    bias = rnd(13)
    rm = torch.randn(13) * 0.1
    rv = torch.rand(13) + 0.5
    rm0, rv0 = rm.clone(), rv.clone()
    out_holder = {}

    def bn(x, weight, bias):
        return F.batch_norm(x, rm, rv, weight, bias, training=training, momentum=0.1, eps=1e-5)
    case('batchnorm2d', {'training': training, 'momentum': 0.1, 'eps': 1e-5},
         {'x': x, 'weight': weight, 'bias': bias}, bn,
         extra={'running_mean_in': enc(rm0), 'running_var_in': enc(rv0)})
    cases[-1]['running_mean_out'] = enc(rm)
    cases[-1]['running_var_out'] = enc(rv)

case('relu', {}, {'x': rnd(3, 13, 7, 5)}, lambda x: F.relu(x))
case('sigmoid', {}, {'x': rnd(3, 13, 7, 5, scale=3.0)}, lambda x: torch.sigmoid(x))
case('maxpool2d', {'kernel': 3, 'stride': 2, 'padding': 1}, {'x': rnd(3, 3, 7, 5)}, lambda x: F.max_pool2d(x, 3, 2, 1))
case('maxpool2d', {'kernel': 3, 'stride': 2, 'padding': 1}, {'x': rnd(1, 13, 9, 11)}, lambda x: F.max_pool2d(x, 3, 2, 1))
case('add', {}, {'a': rnd(3, 13, 7, 5), 'b': rnd(3, 13, 1, 1)}, lambda a, b: a + b)
case('mul', {}, {'a': rnd(3, 13, 7, 5), 'b': rnd(3, 1, 7, 5)}, lambda a, b: a * b)
case('mul', {}, {'a': rnd(3, 13, 7, 5), 'b': rnd(3, 13, 1, 1)}, lambda a, b: a * b)
case('mul', {}, {'a': rnd(1, 3, 7, 5), 'b': rnd(1, 3, 7, 5)}, lambda a, b: a * b)
case('global_avg_pool', {}, {'x': rnd(3, 13, 7, 5)}, lambda x: F.adaptive_avg_pool2d(x, 1))
case('global_max_pool', {}, {'x': rnd(3, 13, 7, 5)}, lambda x: F.adaptive_max_pool2d(x, 1))
case('channel_mean', {}, {'x': rnd(3, 13, 7, 5)}, lambda x: x.mean(dim=1, keepdim=True))
case('channel_max', {}, {'x': rnd(3, 13, 7, 5)}, lambda x: x.max(dim=1, keepdim=True)[0])
case('channel_mean_max', {}, {'x': rnd(3, 13, 7, 5)},
     lambda x: torch.cat([x.mean(dim=1, keepdim=True), x.max(dim=1, keepdim=True)[0]], dim=1))
case('linear', {}, {'x': rnd(3, 13), 'weight': rnd(5, 13, scale=0.3)}, lambda x, weight: F.linear(x, weight))


def cos(a, b, dim, eps):
    return (a * b).sum(dim) / (a.norm(dim=dim) * b.norm(dim=dim) + eps)


case('cosine', {'axis': 'channel', 'eps': 1e-8}, {'a': rnd(3, 13, 7, 5), 'b': rnd(3, 13, 7, 5)},
     lambda a, b: cos(a, b, 1, 1e-8).unsqueeze(1))
case('cosine', {'axis': 'spatial', 'eps': 1e-6}, {'a': rnd(3, 13, 7, 5), 'b': rnd(3, 13, 7, 5)},
     lambda a, b: cos(a.flatten(2), b.flatten(2), 2, 1e-6))
case('softmax', {}, {'x': rnd(3, 13, 7, 5, scale=3.0)}, lambda x: F.softmax(x.flatten(2), dim=2).view_as(x))
case('log_softmax', {}, {'x': rnd(3, 13, 7, 5, scale=3.0)}, lambda x: F.log_softmax(x.flatten(2), dim=2).view_as(x))
for T in (1.0, 2.0):
    def kl(t, s):
        lt = F.log_softmax(t.flatten(2) / T, dim=2)
        ls = F.log_softmax(s.flatten(2) / T, dim=2)
        return (lt.exp() * (lt - ls)).sum(2)
    case('kl_spatial', {'T': T}, {'t': rnd(3, 13, 7, 5, scale=2.0), 's': rnd(3, 13, 7, 5, scale=2.0)}, kl)
case('sum', {}, {'x': rnd(3, 13, 7, 5)}, lambda x: x.sum().view(1))
case('mean', {}, {'x': rnd(3, 13, 7, 5)}, lambda x: x.mean().view(1))
case('upsample_bilinear', {'size': [16, 12]}, {'x': rnd(3, 13, 7, 5)},
     lambda x: F.interpolate(x, size=(16, 12), mode='bilinear', align_corners=False))
case('upsample_bilinear', {'size': [64, 64]}, {'x': rnd(2, 3, 16, 16)},
     lambda x: F.interpolate(x, size=(64, 64), mode='bilinear', align_corners=False))
case('upsample_bilinear', {'size': [7, 5]}, {'x': rnd(2, 3, 16, 13)},
     lambda x: F.interpolate(x, size=(7, 5), mode='bilinear', align_corners=False))

# SGD: three steps of torch.optim.SGD with given gradients
p0 = torch.randn(3, 13, 5)
grads = [torch.randn(3, 13, 5) for _ in range(3)]
p = p0.clone().requires_grad_(True)
opt = torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=1e-4)
traj = []
for g in grads:
    p.grad = g.clone()
    opt.step()
    traj.append(enc(p))
cases.append({'op': 'sgd', 'config': {'lr': 0.1, 'momentum': 0.9, 'weight_decay': 1e-4},
              'inputs': {'param': enc(p0)}, 'steps': [enc(g) for g in grads], 'trajectory': traj})

with open(OUT, 'w') as f:
    json.dump({'generator': 'tools/make_op_fixtures.py', 'torch': torch.__version__, 'cases': cases}, f)
print('wrote', OUT, len(cases), 'cases', os.path.getsize(OUT) // 1024, 'KiB')
