#!/usr/bin/env python3
"""PyTorch reference of the quality recipe (bench/quality.ts): one-class STFPM or DCAM on an MVTec
category, same data pipeline (PIL bilinear resize, ImageNet normalisation, no augmentation), SGD, final
model evaluated with image AUROC (sklearn), pixel AUROC and AU-PRO@0.3 (MVTec algorithm).

/usr/bin/python3 tools/reference_quality.py --method stfpm --size 128 --epochs 20 --batch 16 --seeds 0 1 2
"""
import argparse
import glob
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from PIL import Image
from sklearn.metrics import roc_auc_score

sys.path.insert(0, os.path.dirname(__file__))
from make_metric_fixtures import compute_pro, trapezoid  # noqa: E402
from make_model_fixtures import trunk  # noqa: E402
from make_train_step_fixture import ChannelAttention, cos_c, kd  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument('--method', default='stfpm')
p.add_argument('--category', default='bottle')
p.add_argument('--size', type=int, default=128)
p.add_argument('--epochs', type=int, default=20)
p.add_argument('--batch', type=int, default=16)
p.add_argument('--lr', type=float)
p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
p.add_argument('--device', default='cpu', help="e.g. cuda: same recipe, same seeds (initialisation and batches on the CPU)")
p.add_argument('--shared', default=os.environ.get('DCAM_SHARED', os.path.join(os.path.dirname(__file__), '..', '..', 'shared')))
args = p.parse_args()
torch.set_num_threads(int(os.environ.get('DCAM_THREADS', '2')))
lr = args.lr or (0.4 if args.method == 'stfpm' else 0.1)
root = os.path.join(args.shared, 'data', 'mvtec', args.category)
mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


def load(path):
    im = Image.open(path).convert('RGB').resize((args.size, args.size), Image.BILINEAR)
    return (torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1) - mean) / std


train_x = torch.stack([load(f) for f in sorted(glob.glob(os.path.join(root, 'train', 'good', '*.png')))])
test = []
for d in sorted(os.listdir(os.path.join(root, 'test'))):
    for f in sorted(glob.glob(os.path.join(root, 'test', d, '*.png'))):
        if d == 'good':
            m = np.zeros((args.size, args.size), bool)
        else:
            mp = os.path.join(root, 'ground_truth', d, os.path.basename(f)[:-4] + '_mask.png')
            m = np.asarray(Image.open(mp).convert('L').resize((args.size, args.size), Image.NEAREST)) > 127
        test.append((load(f), m, int(d != 'good')))

pth = os.path.join(args.shared, 'weights', 'resnet18-imagenet-layer1to3.pth')
if os.path.exists(pth):
    sd = torch.load(pth, map_location='cpu')
else:  # only the safetensors copy (needs the safetensors package)
    from safetensors.torch import load_file
    sd = load_file(pth[:-4] + '.safetensors')
teacher = torchvision.models.resnet18()
teacher.load_state_dict(sd, strict=False)
teacher.eval()
dev = torch.device(args.device)
teacher.to(dev)
results = []
for seed in args.seeds:
    torch.manual_seed(seed)
    student = torchvision.models.resnet18()
    atts = nn.ModuleList([ChannelAttention(c) for c in (64, 128, 256)]) if args.method == 'dcam' else nn.ModuleList()
    student.to(dev)
    atts.to(dev)
    params = [q for n, q in student.named_parameters() if not n.startswith(('layer4', 'fc'))] + list(atts.parameters())
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=1e-4)
    t0 = time.time()
    for epoch in range(args.epochs):
        student.train()
        perm = torch.randperm(len(train_x))
        for i in range(0, len(perm), args.batch):
            x = train_x[perm[i:i + args.batch]].to(dev)
            with torch.no_grad():
                ft = trunk(teacher, x)
            fs = trunk(student, x)
            if args.method == 'stfpm':
                loss = sum(((F.normalize(t, dim=1) - F.normalize(s, dim=1)) ** 2).sum(1).mean() for t, s in zip(ft, fs))
            else:
                fa = [a(f) for a, f in zip(atts, fs)]
                loss = sum((1 - cos_c(t, s, 1e-8)).mean() + kd(t, s) for t, s in zip(ft, fa))
            opt.zero_grad()
            loss.backward()
            opt.step()
    seconds = time.time() - t0
    student.eval()
    maps, masks, labels = [], [], []
    with torch.no_grad():
        for x, m, y in test:
            ft = trunk(teacher, x[None].to(dev))
            fs = trunk(student, x[None].to(dev))
            ms = [F.interpolate((1 - cos_c(t, s, 1e-8))[:, None], size=(args.size, args.size), mode='bilinear', align_corners=False) for t, s in zip(ft, fs)]
            mp = (ms[0] * ms[1] * ms[2]) if args.method == 'stfpm' else (ms[0] + ms[1] + ms[2])
            maps.append(mp[0, 0].cpu().numpy())
            masks.append(m)
            labels.append(y)
    maps = np.stack(maps)
    fprs, pros = compute_pro(list(maps), list(masks))
    r = {'seed': seed, 'image_auroc': roc_auc_score(labels, maps.reshape(len(maps), -1).max(1)),
         'pixel_auroc': roc_auc_score(np.stack(masks).ravel(), maps.ravel()),
         'aupro': trapezoid(fprs, pros, x_max=0.3) / 0.3, 'train_seconds': seconds}
    print(json.dumps(r))
    results.append(r)
print(json.dumps({k: float(np.mean([r[k] for r in results])) for k in ('image_auroc', 'pixel_auroc', 'aupro', 'train_seconds')}))
