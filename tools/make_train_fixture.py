#!/usr/bin/env python3
"""Loss curve of a small conv net (conv, BN, ReLU, max pool, residual add, strided 1x1 conv with bias)
trained 20 SGD steps in PyTorch, for the engine's training-parity test.

/usr/bin/python3 tools/make_train_fixture.py  ->  test/fixtures/small-net.json
"""
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from make_model_fixtures import enc  # noqa: E402

torch.manual_seed(7)
torch.set_num_threads(2)
OUT = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'small-net.json')


class SmallNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.conv3 = nn.Conv2d(8, 8, 3, 1, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(8)
        self.head = nn.Conv2d(8, 4, 1, 2, 0, bias=True)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        y = F.relu(self.bn2(self.conv2(x)))
        y = self.bn3(self.conv3(y))
        x = F.relu(x + y)
        return self.head(x)


net = SmallNet()
with torch.no_grad():  # non-trivial BN affine parameters
    for bn in (net.bn1, net.bn2, net.bn3):
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.2, 0.2)
init = {k: enc(v) for k, v in net.state_dict().items() if not k.endswith('num_batches_tracked')}
batches = [torch.randn(4, 3, 13, 11) for _ in range(2)]
targets = [torch.randn(4, 4, 4, 3) for _ in range(2)]
opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
losses = []
net.train()
for step in range(20):
    x, t = batches[step % 2], targets[step % 2]
    opt.zero_grad()
    loss = ((net(x) - t) ** 2).mean()
    loss.backward()
    opt.step()
    losses.append(loss.item())
final = {k: enc(v) for k, v in net.state_dict().items() if not k.endswith('num_batches_tracked')}
with open(OUT, 'w') as f:
    json.dump({'generator': 'tools/make_train_fixture.py', 'lr': 0.05, 'momentum': 0.9, 'weight_decay': 1e-4,
               'init': init, 'batches': [enc(b) for b in batches], 'targets': [enc(t) for t in targets],
               'losses': losses, 'final': final}, f)
print('wrote', OUT, 'losses', [round(l, 4) for l in losses])
