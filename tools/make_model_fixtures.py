#!/usr/bin/env python3
"""Forward parity fixture for the ResNet18 trunk and the anomaly maps.

Teacher: the shared ImageNet weights (../shared/weights). Student: the teacher's tensors perturbed by a
closed-form pattern (so the test can rebuild it without shipping 11 MB), with non-trivial BN running
statistics, in eval mode. Inputs: two real MVTec bottle images, PIL-resized to 64x64, ImageNet-normalised.

/usr/bin/python3 tools/make_model_fixtures.py  ->  test/fixtures/model-forward.json
"""
import base64
import json
import os

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image

torch.set_num_threads(2)
HERE = os.path.dirname(__file__)
SHARED = os.environ.get('DCAM_SHARED', os.path.join(HERE, '..', '..', 'shared'))
OUT = os.path.join(HERE, '..', 'test', 'fixtures', 'model-forward.json')
SIZE = 64


def enc(t):
    t = t.detach().to(torch.float32).contiguous()
    return {'shape': list(t.shape), 'f32': base64.b64encode(t.numpy().astype('<f4').tobytes()).decode()}


MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


def load_bottle(rel, size):
    """A bottle image as the engine's pipeline makes it: PIL bilinear resize, /255, ImageNet normalisation."""
    im = Image.open(os.path.join(SHARED, 'data', 'mvtec', 'bottle', rel)).convert('RGB').resize((size, size), Image.BILINEAR)
    return (torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1) - MEAN) / STD


def perturb(name, j, v):
    """The student's tensor j (in trunk order) from the teacher's: the test computes the same."""
    i = np.arange(v.numel(), dtype=np.float64)
    if name.endswith('running_mean'):
        out = 0.1 * np.sin(0.11 * i + j)
    elif name.endswith('running_var'):
        out = 1.0 + 0.5 * np.abs(np.cos(0.13 * i + j))
    else:
        out = v.double().flatten().numpy() * (1.0 + 0.25 * np.sin(0.37 * i + 1.3 * j))
    return torch.from_numpy(out.astype(np.float32)).view_as(v)


def trunk(model, x):
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    f1 = model.layer1(x)
    f2 = model.layer2(f1)
    f3 = model.layer3(f2)
    return [f1, f2, f3]


def cos_map(t, s, eps=1e-8):
    return 1 - (t * s).sum(1, keepdim=True) / (t.norm(dim=1, keepdim=True) * s.norm(dim=1, keepdim=True) + eps)


def main():
    sd = torch.load(os.path.join(SHARED, 'weights', 'resnet18-imagenet-layer1to3.pth'), map_location='cpu')
    teacher = torchvision.models.resnet18()
    teacher.load_state_dict(sd, strict=False)
    teacher.eval()

    names = [k for k in sd.keys() if not k.endswith('num_batches_tracked')]
    student_sd = {k: perturb(k, j, sd[k]) for j, k in enumerate(names)}
    student = torchvision.models.resnet18()
    student.load_state_dict(student_sd, strict=False)
    student.eval()

    x = torch.stack([load_bottle(rel, SIZE) for rel in ['train/good/000.png', 'test/broken_large/000.png']])

    with torch.no_grad():
        ft = trunk(teacher, x)
        fs = trunk(student, x)
        maps = [F.interpolate(cos_map(t, s), size=(SIZE, SIZE), mode='bilinear', align_corners=False) for t, s in zip(ft, fs)]
        sum_map = maps[0] + maps[1] + maps[2]
        prod_map = maps[0] * maps[1] * maps[2]

    with open(OUT, 'w') as f:
        json.dump({'generator': 'tools/make_model_fixtures.py', 'size': SIZE, 'names': names, 'input': enc(x),
                   'teacher': [enc(t) for t in ft], 'student_f3': enc(fs[2]),
                   'map_sum': enc(sum_map), 'map_product': enc(prod_map)}, f)
    print('wrote', OUT, os.path.getsize(OUT) // 1024, 'KiB; image scores (sum map):', sum_map.flatten(1).max(1)[0].tolist())


if __name__ == '__main__':
    main()
