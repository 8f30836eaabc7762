#!/usr/bin/env python3
"""Small PNGs of every colour type, with what PIL makes of them, and PIL bilinear resizes.

/usr/bin/python3 tools/make_image_fixtures.py  ->  test/fixtures/images/*.png, test/fixtures/images.json
"""
import base64
import json
import os

import numpy as np
from PIL import Image

HERE = os.path.dirname(__file__)
SHARED = os.environ.get('DCAM_SHARED', os.path.join(HERE, '..', '..', 'shared'))
DIR = os.path.join(HERE, '..', 'test', 'fixtures', 'images')
rng = np.random.default_rng(3)
b64 = lambda a: base64.b64encode(np.ascontiguousarray(a, dtype=np.uint8).tobytes()).decode()

rgb = rng.integers(0, 256, (29, 37, 3), dtype=np.uint8)
gray = rng.integers(0, 256, (29, 37), dtype=np.uint8)
images = {
    'rgb': Image.fromarray(rgb, 'RGB'),
    'gray': Image.fromarray(gray, 'L'),
    'rgba': Image.fromarray(np.dstack([rgb, gray]), 'RGBA'),
    'gray-alpha': Image.fromarray(np.dstack([gray, 255 - gray]), 'LA'),
    'palette': Image.fromarray(rgb, 'RGB').quantize(colors=16),
    'gray16': Image.fromarray((gray.astype(np.uint16) * 257 + 3).astype(np.uint16), 'I;16'),
    'bilevel': Image.fromarray(gray > 128).convert('1'),
}
out = {'convert': {}, 'resize': {}}
for name, im in images.items():
    path = os.path.join(DIR, name + '.png')
    im.save(path)
    back = Image.open(path)
    if name == 'gray16':
        # PIL's own I;16 -> RGB clips instead of scaling; the engine scales 16-bit to 8 (v >> 8).
        arr = (np.asarray(back, dtype=np.uint16) >> 8).astype(np.uint8)
        expected = np.dstack([arr, arr, arr])
    else:
        expected = np.asarray(back.convert('RGB'))
    out['convert'][name] = {'mode': back.mode, 'rgb': b64(expected)}

# JPEG, BMP and TIFF: tools/make_codec_fixtures.py

src = Image.fromarray(rgb, 'RGB')
for (w, h) in [(16, 12), (64, 50), (37, 10), (5, 29)]:
    out['resize']['%dx%d' % (w, h)] = b64(np.asarray(src.resize((w, h), Image.BILINEAR)))
bottle = Image.open(os.path.join(SHARED, 'data', 'mvtec', 'bottle', 'test', 'broken_large', '000.png')).convert('RGB')
out['bottle_64'] = b64(np.asarray(bottle.resize((64, 64), Image.BILINEAR)))
mask = Image.open(os.path.join(SHARED, 'data', 'mvtec', 'bottle', 'ground_truth', 'broken_large', '000_mask.png')).convert('L')
out['bottle_mask_64'] = b64(np.asarray(mask.resize((64, 64), Image.NEAREST)))
with open(os.path.join(HERE, '..', 'test', 'fixtures', 'images.json'), 'w') as f:
    json.dump(out, f)
print('wrote', sorted(os.listdir(DIR)))
