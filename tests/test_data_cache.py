"A real set decoded once (`cache_images`): the same items bit for bit, kept by fingerprint, broken images warned once; the CLI uses it."
import json, os, warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import naruto
from naruto_core.config import DataConfig
from naruto_core.data import CachedImages, cache_images, load_data
from naruto_core.shapes import DataWarning
from naruto_core.training import fetch_items


@pytest.fixture
def folder(tmp_path):
    "An imagefolder of 40 JPEGs and PNGs of odd sizes and modes, and one broken file."
    root = tmp_path / 'pics'; root.mkdir()
    rng, rows = np.random.default_rng(0), []
    for i in range(40):
        a = rng.integers(0, 256, (20 + i, 30 + 2 * i, 3), dtype=np.uint8)
        im = Image.fromarray(a).convert('L' if i % 7 == 0 else 'RGB')
        name = f'{i}.jpg' if i % 2 else f'{i}.png'
        im.save(root / name)
        rows.append({'file_name': name, 'text': f'picture {i}'})
    (root / 'broken.png').write_bytes(b'not a picture at all')
    rows.insert(5, {'file_name': 'broken.png', 'text': 'a broken one'})
    (root / 'metadata.jsonl').write_text('\n'.join(json.dumps(r) for r in rows) + '\n')
    return root


def _warnings(fn):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        out = fn()
    return out, [str(x.message) for x in w if issubclass(x.category, DataWarning)]


def test_same_items_and_one_warning(folder, tmp_path):
    cfg = DataConfig(spec=str(folder), image_size=16, val_fraction=0.1)
    plain = load_data(cfg, 'train')
    cached, msgs = _warnings(lambda: load_data(cfg, 'train', cache=tmp_path / 'dec', progress=False))
    assert isinstance(cached, CachedImages) and not cached.loaded
    broken = sum(plain.source.name(i) == 'broken.png' for i in plain.indices)
    assert len(msgs) == broken and all('broken.png' in m for m in msgs)
    ks = list(range(len(plain)))
    for k, got in zip(ks, fetch_items(cached, ks)):                        # the batched fetch, as the Trainer reads
        a, b = plain[k], cached[k]
        assert (a is None) == (b is None) == (got is None)
        if a is not None:
            assert a[0].dtype == b[0].dtype == torch.float32
            assert torch.equal(a[0], b[0]) and torch.equal(a[0], got[0]) and a[1] == b[1] == got[1]
    again, msgs = _warnings(lambda: load_data(cfg, 'train', cache=tmp_path / 'dec'))
    assert again.loaded and len(msgs) == broken                             # read back, the broken file warned once more
    _, msgs = _warnings(lambda: [again[k] for k in ks] + fetch_items(again, ks))
    assert msgs == []                                                       # and never again while reading


def test_fingerprint_follows_the_files(folder, tmp_path):
    cfg = DataConfig(spec=str(folder), image_size=16, val_fraction=0.1)
    a = load_data(cfg, 'train', cache=tmp_path / 'dec')
    assert load_data(cfg, 'train', cache=tmp_path / 'dec').fingerprint == a.fingerprint
    assert load_data(DataConfig(spec=str(folder), image_size=24, val_fraction=0.1), 'train', cache=True).fingerprint != a.fingerprint
    k = next(k for k in range(len(a)) if a[k] is not None)
    f = folder / a.source.name(a.indices[k])
    Image.new('RGB', (8, 8), (255, 0, 0)).save(f, format='PNG' if f.suffix == '.png' else 'JPEG')
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    b = load_data(cfg, 'train', cache=tmp_path / 'dec')
    assert b.fingerprint != a.fingerprint and not b.loaded                  # a changed file: decoded again
    assert torch.equal(b[k][0], load_data(cfg, 'train')[k][0]) and not torch.equal(b[k][0], a[k][0])


def test_damaged_cache_file_is_rebuilt(folder, tmp_path):
    cfg = DataConfig(spec=str(folder), image_size=16, val_fraction=0.1)
    a = load_data(cfg, 'train', cache=tmp_path / 'dec')
    a.file.write_bytes(a.file.read_bytes()[:100])
    b = load_data(cfg, 'train', cache=tmp_path / 'dec')
    assert not b.loaded and torch.equal(b.images, a.images)
    assert load_data(cfg, 'train', cache=tmp_path / 'dec').loaded          # and written whole again


def test_too_large_or_off(folder):
    cfg = DataConfig(spec=str(folder), image_size=16, val_fraction=0.1)
    plain = load_data(cfg, 'train')
    small, msgs = _warnings(lambda: cache_images(plain, max_mb=0.001))
    assert small is plain and len(msgs) == 1 and 'data.cache_mb' in msgs[0]
    assert not isinstance(load_data(DataConfig(spec=str(folder), image_size=16, cache_mb=0), 'train', cache=True), CachedImages)
    assert not isinstance(load_data(DataConfig(), 'train', cache=True), CachedImages)      # shapes: drawn, not decoded


def test_cli_decodes_once(tmp_path, folder):
    "train-vqvae keeps the decoded set under decoded/; a resume and encode read it back; the broken file warns once per run."
    out = tmp_path / 'vq'
    r = naruto('train-vqvae', '--preset', 'tiny', '--data', folder, '--out', out, '--set', 'train_vq.max_steps=4', check=True)
    files = sorted(p.name for p in (out / 'decoded').iterdir())
    assert [f.split('-')[0] for f in files] == ['train', 'val'] and all(f.endswith('.safetensors') for f in files)
    assert r.stderr.count('broken.png') == 1, r.stderr
    before = {p.name: p.stat().st_mtime_ns for p in (out / 'decoded').iterdir()}
    r = naruto('train-vqvae', '--out', out, '--max_steps', '6', check=True)             # resumed: read back, not decoded
    assert r.stderr.count('broken.png') == 1
    naruto('encode', '--vqvae', out, check=True)
    assert {p.name: p.stat().st_mtime_ns for p in (out / 'decoded').iterdir()} == before
    meta = json.loads((out / 'codes' / 'train.json').read_text())
    assert meta['n'] == len(load_data(DataConfig(spec=str(folder), image_size=16), 'train')) - 1   # the broken one left out
