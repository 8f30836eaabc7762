#!/usr/bin/env python3
"""Crafted weight files that once exhausted memory or loaded when they should not, for the loader's tests.

Made without PyTorch: the pickles name torch's rebuild helpers through stand-in modules, exactly as
torch.save writes them, so the files look like real checkpoints to a reader.

/usr/bin/python3 tools/make_hostile_files.py  ->  test/fixtures/hostile/*
"""
import io
import os
import pickle
import sys
import types
import zipfile
from collections import OrderedDict

OUT = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'hostile')
os.makedirs(OUT, exist_ok=True)

# Stand-ins for torch._utils._rebuild_tensor_v2 and torch.FloatStorage, pickled by reference.
torch_mod = types.ModuleType('torch')
utils_mod = types.ModuleType('torch._utils')


def _rebuild_tensor_v2(*args):
    return args


class FloatStorage:
    pass


_rebuild_tensor_v2.__module__ = 'torch._utils'
_rebuild_tensor_v2.__qualname__ = '_rebuild_tensor_v2'
FloatStorage.__module__ = 'torch'
FloatStorage.__qualname__ = 'FloatStorage'
utils_mod._rebuild_tensor_v2 = _rebuild_tensor_v2
torch_mod._utils = utils_mod
torch_mod.FloatStorage = FloatStorage
sys.modules['torch'] = torch_mod
sys.modules['torch._utils'] = utils_mod


class Tensor:
    """Pickles as torch does: _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)."""

    def __init__(self, key, numel, offset, size, stride):
        self.key, self.numel, self.offset, self.size, self.stride = key, numel, offset, size, stride

    def __reduce__(self):
        return (_rebuild_tensor_v2, (StorageRef(self.key, self.numel), self.offset, tuple(self.size), tuple(self.stride), False, OrderedDict()))


class StorageRef:
    def __init__(self, key, numel):
        self.key, self.numel = key, numel


class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, StorageRef):
            return ('storage', FloatStorage, obj.key, 'cpu', obj.numel)
        return None


def pth(name, state, storages, compress=zipfile.ZIP_STORED):
    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump(state)
    with zipfile.ZipFile(os.path.join(OUT, name), 'w', compression=compress) as z:
        z.writestr('archive/data.pkl', buf.getvalue())
        z.writestr('archive/version', '3\n')
        for key, data in storages.items():
            z.writestr(f'archive/data/{key}', data)
    print(name, os.path.getsize(os.path.join(OUT, name)), 'bytes')


# 1. Stride-0 views: 4 bytes of storage, each tensor declaring 2^26 elements (256 MiB apiece once copied).
pth('stride0.pth', OrderedDict((f'conv{i}.weight', Tensor('0', 1, 0, [8192, 8192], [0, 0])) for i in range(7)), {'0': b'\0\0\0\0'})
# 2. A zip bomb: one storage of 800 MB of zeros, deflated to under a megabyte.
pth('zipbomb.pth', OrderedDict(w=Tensor('0', 200_000_000, 0, [200_000_000], [1])), {'0': bytes(800_000_000)}, zipfile.ZIP_DEFLATED)
# 3. A legacy (pre-zip) torch.save file: a bare pickle, magic number first.
with open(os.path.join(OUT, 'legacy.pth'), 'wb') as f:
    pickle.dump(0x1950A86A20F9469CFC6C, f, protocol=2)
    pickle.dump(1001, f, protocol=2)
print('legacy.pth', os.path.getsize(os.path.join(OUT, 'legacy.pth')), 'bytes')
