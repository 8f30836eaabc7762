#!/usr/bin/env python3
"""One-SGD-step parity fixture for both presets (stfpm, dcam).

Student: the shared teacher's tensors perturbed by the closed-form pattern of make_model_fixtures.py
(BN in training mode); attention (dcam: channel attention, loss-side) with closed-form weights; a batch of
4 real bottle images at 64x64; one torch.optim.SGD step (lr 0.1, momentum 0.9, weight decay 1e-4) on
every student and attention parameter. Records the loss terms, the full update (new - init) of selected
tensors and of all attention weights, and the sum and L2 norm of the update of every student tensor.

/usr/bin/python3 tools/make_train_step_fixture.py  ->  test/fixtures/train-step.json
/usr/bin/python3 tools/make_train_step_fixture.py --images test/broken_large/000,... --out FILE  (another batch)
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.dirname(__file__))
from make_model_fixtures import SHARED, enc, load_bottle, perturb, trunk  # noqa: E402

torch.set_num_threads(2)
OUT = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'train-step.json')
SIZE = 64
SELECTED = ['conv1.weight', 'bn1.weight', 'bn1.bias', 'bn1.running_mean', 'bn1.running_var',
            'layer1.0.conv1.weight', 'layer2.0.downsample.0.weight', 'layer3.1.bn2.weight', 'layer3.1.bn2.bias',
            'layer3.1.bn2.running_mean', 'layer3.1.bn2.running_var']


def attention_value(t, shape):
    """Closed-form attention weight tensor number t (in attention.safetensors order)."""
    n = int(np.prod(shape))
    fan_in = int(np.prod(shape[1:]))
    i = np.arange(n, dtype=np.float64)
    return torch.from_numpy((np.sin(0.7 * i + 2.1 * t) / np.sqrt(fan_in)).astype(np.float32)).view(*shape)


class ChannelAttention(nn.Module):
    def __init__(self, c, r=8):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(c, c // r, bias=False), nn.ReLU(), nn.Linear(c // r, c, bias=False))

    def forward(self, x):
        a = self.mlp(F.adaptive_avg_pool2d(x, 1).flatten(1)) + self.mlp(F.adaptive_max_pool2d(x, 1).flatten(1))
        return x * torch.sigmoid(a)[:, :, None, None]


def cos_c(t, s, eps):
    return (t * s).sum(1) / (t.norm(dim=1) * s.norm(dim=1) + eps)


def kd(t, s, T=1.0):
    lt = F.log_softmax(t.flatten(2) / T, dim=2)
    ls = F.log_softmax(s.flatten(2) / T, dim=2)
    return (lt.exp() * (lt - ls)).sum(2).mean()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--images', default=','.join('train/good/%03d' % n for n in range(4)), help='bottle images (without .png), comma-separated')
    ap.add_argument('--out', default=OUT)
    args = ap.parse_args()
    sd = torch.load(os.path.join(SHARED, 'weights', 'resnet18-imagenet-layer1to3.pth'), map_location='cpu')
    names = [k for k in sd.keys() if not k.endswith('num_batches_tracked')]
    teacher = torchvision.models.resnet18()
    teacher.load_state_dict(sd, strict=False)
    teacher.eval()

    x = torch.stack([load_bottle(rel + '.png', SIZE) for rel in args.images.split(',')])
    with torch.no_grad():
        ft = trunk(teacher, x)

    result = {'generator': 'tools/make_train_step_fixture.py', 'size': SIZE, 'names': names, 'input': enc(x),
              'lr': 0.1, 'momentum': 0.9, 'weight_decay': 1e-4, 'selected': SELECTED, 'presets': {}}
    for method in ['stfpm', 'dcam']:
        student = torchvision.models.resnet18()
        student.load_state_dict({k: perturb(k, j, sd[k]) for j, k in enumerate(names)}, strict=False)
        student.train()
        init = {k: v.clone() for k, v in student.state_dict().items()}
        atts = []
        params = [p for n, p in student.named_parameters() if not n.startswith(('layer4', 'fc'))]
        if method == 'dcam':
            t = 0
            for c in (64, 128, 256):
                a = ChannelAttention(c)
                with torch.no_grad():
                    a.mlp[0].weight.copy_(attention_value(t, (c // 8, c)))
                    a.mlp[2].weight.copy_(attention_value(t + 1, (c, c // 8)))
                t += 2
                atts.append(a)
                params += list(a.parameters())
        att_init = [p.detach().clone() for a in atts for p in a.parameters()]
        opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-4)
        fs = trunk(student, x)
        terms = {}
        if method == 'stfpm':
            terms['stfpmL2'] = sum(((F.normalize(t, dim=1) - F.normalize(s, dim=1)) ** 2).sum(1).mean() for t, s in zip(ft, fs))
        else:
            fa = [a(f) for a, f in zip(atts, fs)]
            terms['channelCD'] = sum((1 - cos_c(t, s, 1e-8)).mean() for t, s in zip(ft, fa))
            terms['spatialKD'] = sum(kd(t, s) for t, s in zip(ft, fa))
        loss = sum(terms.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        new = student.state_dict()
        upd = {k: (new[k].float() - init[k].float()) for k in names}
        att_new = [p.detach() for a in atts for p in a.parameters()]
        result['presets'][method] = {
            'loss': loss.item(),
            'terms': {k: v.item() for k, v in terms.items()},
            'selected_update': {k: enc(upd[k]) for k in SELECTED},
            'update_sum': {k: upd[k].double().sum().item() for k in names},
            'update_norm': {k: upd[k].double().norm().item() for k in names},
            'attention_update': [enc(n - i) for n, i in zip(att_new, att_init)],
        }
        print(method, 'loss', loss.item(), {k: round(v.item(), 5) for k, v in terms.items()})

    with open(args.out, 'w') as f:
        json.dump(result, f)
    print('wrote', args.out, os.path.getsize(args.out) // 1024, 'KiB')


if __name__ == '__main__':
    main()
