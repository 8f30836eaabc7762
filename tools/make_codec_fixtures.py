#!/usr/bin/env python3
"""JPEG, BMP and TIFF files of every kind the loader accepts, with what PIL makes of them.

Each file is decoded by PIL (`Image.open(f).convert('RGB')`, libjpeg-turbo for JPEG) and its RGB bytes
stored; the engine's decoders must reproduce them bit for bit.

/usr/bin/python3 tools/make_codec_fixtures.py  ->  test/fixtures/codecs/*, test/fixtures/codecs.json
"""
import base64
import json
import os

import numpy as np
from PIL import Image, features

HERE = os.path.dirname(__file__)
DIR = os.path.join(HERE, '..', 'test', 'fixtures', 'codecs')
os.makedirs(DIR, exist_ok=True)
rng = np.random.default_rng(7)


def picture(w, h):
    """Smooth structure plus noise: realistic for JPEG, with edges for the chroma upsampling to matter."""
    y, x = np.mgrid[0:h, 0:w]
    r = 128 + 100 * np.sin(x / 5.0 + y / 7.0) + rng.normal(0, 18, (h, w))
    g = 128 + 90 * np.cos(x / 3.0 - y / 11.0) + rng.normal(0, 18, (h, w))
    b = (x * 7 + y * 3) % 256 + rng.normal(0, 10, (h, w))
    return Image.fromarray(np.dstack([r, g, b]).clip(0, 255).astype(np.uint8), 'RGB')


exif = Image.Exif()
exif[0x0112] = 6  # orientation "rotate 90": PIL does not apply it on open, nor may we
cases = {
    # name: (size, mode, save keyword arguments)
    'baseline-420.jpg': ((37, 29), 'RGB', dict(quality=85, subsampling=2)),
    'baseline-422.jpg': ((41, 23), 'RGB', dict(quality=90, subsampling=1)),
    'baseline-444.jpg': ((33, 35), 'RGB', dict(quality=75, subsampling=0)),
    'progressive-420.jpg': ((50, 31), 'RGB', dict(quality=80, subsampling=2, progressive=True)),
    'progressive-444.jpg': ((17, 40), 'RGB', dict(quality=92, subsampling=0, progressive=True)),
    'optimized-420-q50.jpg': ((64, 48), 'RGB', dict(quality=50, subsampling=2, optimize=True)),
    'grayscale.jpg': ((45, 27), 'L', dict(quality=85)),
    'grayscale-progressive.jpg': ((19, 53), 'L', dict(quality=70, progressive=True)),
    'exif-orientation.jpg': ((30, 20), 'RGB', dict(quality=85, exif=exif.tobytes())),
    'rgb24.bmp': ((23, 17), 'RGB', {}),
    'rgba32.bmp': ((13, 9), 'RGBA', {}),
    'palette8.bmp': ((21, 11), 'P', {}),
    'gray8.bmp': ((19, 7), 'L', {}),
    'bilevel1.bmp': ((27, 9), '1', {}),
    'rgb.tif': ((23, 17), 'RGB', {}),
    'rgb-lzw.tif': ((31, 12), 'RGB', dict(compression='tiff_lzw')),
    'rgb-deflate.tif': ((16, 16), 'RGB', dict(compression='tiff_adobe_deflate')),
    'rgb-packbits.tif': ((20, 10), 'RGB', dict(compression='packbits')),
    'gray.tif': ((18, 14), 'L', {}),
    'rgba.tif': ((12, 12), 'RGBA', {}),
}
out = {'pil': Image.__version__, 'libjpeg_turbo': features.version('libjpeg_turbo'), 'images': {}}
for name, ((w, h), mode, kw) in cases.items():
    im = picture(w, h)
    if mode == 'RGBA':
        im = Image.merge('RGBA', [*im.split(), Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8), 'L')])
    elif mode == 'P':
        im = im.quantize(colors=40)
    elif mode != 'RGB':
        im = im.convert(mode)
    path = os.path.join(DIR, name)
    im.save(path, **kw)
    back = Image.open(path)
    rgb = np.asarray(back.convert('RGB'))
    out['images'][name] = {'mode': back.mode, 'width': rgb.shape[1], 'height': rgb.shape[0], 'rgb': base64.b64encode(rgb.tobytes()).decode()}
with open(os.path.join(HERE, '..', 'test', 'fixtures', 'codecs.json'), 'w') as f:
    json.dump(out, f)
print('PIL', out['pil'], 'libjpeg-turbo', out['libjpeg_turbo'], 'wrote', len(cases), 'files')
