"Bad input to naruto_core.data: broken and odd images, sets without captions, the Hub offline, garbage captions."
import os
os.environ['HF_HUB_OFFLINE'] = '1'      # before datasets / huggingface_hub are imported
os.environ['HF_DATASETS_OFFLINE'] = '1'

import io, json, time, warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import datasets
from naruto_core.config import DataConfig, NarutoError
from naruto_core.data import collate, load_data, NARUTO
from naruto_core.shapes import CaptionError, DataError, DataWarning, parse_caption

SIZE = 16


def _png_bytes(im: Image.Image, **kw) -> bytes:
    b = io.BytesIO(); im.save(b, 'PNG', **kw); return b.getvalue()


def _good_images() -> dict:
    "File name -> encoded bytes of images in odd modes and sizes."
    pal = Image.new('P', (8, 8), 1); pal.putpalette([255, 0, 0, 0, 255, 0] + [0, 0, 0] * 254); pal.info['transparency'] = 0
    rgba = Image.new('RGBA', (12, 20), (0, 0, 255, 128))
    i16 = Image.fromarray((np.arange(30 * 40).reshape(30, 40) * 50).astype(np.uint16))
    big = Image.linear_gradient('L').resize((3000, 2000)).convert('RGB')
    cmyk = io.BytesIO(); Image.new('CMYK', (40, 24), (0, 200, 255, 10)).save(cmyk, 'JPEG')
    return {'one.png': _png_bytes(Image.new('RGB', (1, 1), (10, 20, 30))),
            'big.png': _png_bytes(big, compress_level=1),
            'gray.png': _png_bytes(Image.new('L', (17, 9), 77)),
            'cmyk.jpg': cmyk.getvalue(),
            'i16.png': _png_bytes(i16),
            'rgba.png': _png_bytes(rgba),
            'pal.png': _png_bytes(pal)}


def _broken_images() -> dict:
    full = _png_bytes(Image.new('RGB', (64, 64), (1, 2, 3)))
    return {'truncated.png': full[: len(full) // 2], 'empty.png': b'', 'text.png': b'hello, I am not a PNG\n'}


GOOD, BROKEN = _good_images(), _broken_images()


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp('imagefolder')
    rows = []
    for name, data in {**GOOD, **BROKEN}.items():
        (root / name).write_bytes(data)
        rows.append({'file_name': name, 'text': f'  caption of {name}\n'})
    (root / 'metadata.jsonl').write_text('\n'.join(json.dumps(r) for r in rows) + '\n')
    return root


@pytest.fixture(scope='module')
def parquet(tmp_path_factory):
    path = tmp_path_factory.mktemp('parquet') / 'data.parquet'
    names = list(GOOD) + list(BROKEN)
    feats = datasets.Features({'image': datasets.Image(), 'text': datasets.Value('string')})
    ds = datasets.Dataset.from_dict({'image': [{'bytes': {**GOOD, **BROKEN}[n], 'path': n} for n in names],
                                     'text': [f'caption of {n}' for n in names]}, features=feats)
    ds.to_parquet(str(path))
    return path


def _read_all(spec: str):
    "Every item of both splits, the DataWarnings raised, and the caption of every None item."
    cfg = DataConfig(spec=spec, image_size=SIZE, val_fraction=0.2)
    splits = [load_data(cfg, 'train'), load_data(cfg, 'val')]
    assert sum(map(len, splits)) == len(GOOD) + len(BROKEN)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        items = [(d[k], d.captions[k]) for d in splits for k in range(len(d))]
        again = [d[k] for d in splits for k in range(len(d))]  # a second epoch warns no more
    assert [a is None for a in again] == [it is None for it, _ in items]
    msgs = [str(x.message) for x in w if issubclass(x.category, DataWarning)]
    return items, msgs


def _check(items, msgs):
    bad = [c for it, c in items if it is None]
    assert sorted(bad) == sorted(f'caption of {n}' for n in BROKEN)
    for it, c in items:
        if it is None: continue
        x, cap = it
        assert x.shape == (3, SIZE, SIZE) and x.dtype == torch.float32
        assert -1 <= x.min() and x.max() <= 1
        assert cap == c and cap == cap.strip() and cap.startswith('caption of ')
    assert len(msgs) == len(BROKEN), msgs
    for name in BROKEN: assert sum(name in m for m in msgs) == 1, (name, msgs)
    images, caps = collate([it for it, _ in items])
    assert images.shape == (len(GOOD), 3, SIZE, SIZE) and len(caps) == len(GOOD)


def test_imagefolder(folder):
    items, msgs = _read_all(str(folder))
    _check(items, msgs)
    got = {c: it[0] for it, c in items if it is not None}
    one = got['caption of one.png']
    assert torch.allclose(one[:, 0, 0], torch.tensor([10, 20, 30]) / 127.5 - 1, atol=1e-6)  # 1x1 upscaled
    i16 = got['caption of i16.png']
    assert i16.max() > 0.5 and i16.min() < -0.9   # 16 bit scaled to the full 8-bit range, not clipped to white
    gray = got['caption of gray.png']
    assert torch.allclose(gray, torch.full_like(gray, 77 / 127.5 - 1), atol=1e-5)


def test_relative_folder_spec(folder, monkeypatch):
    monkeypatch.chdir(folder.parent)
    _check(*_read_all(folder.name))


def test_parquet(parquet):
    _check(*_read_all(str(parquet)))


def test_collate_all_broken():
    assert collate([None, None]) is None


def test_naruto_offline_is_one_clear_error():
    t = time.time()
    try: ds = load_data(DataConfig(spec='naruto'), 'train')
    except DataError as e:
        msg = str(e)
        assert NARUTO in msg and 'offline' in msg and '\n' not in msg
    else:
        assert len(ds) > 0  # the set is in the local cache
    assert time.time() - t < 20


def test_hf_missing_set_offline():
    with pytest.raises(DataError, match='no/such-set'): load_data(DataConfig(spec='hf:no/such-set:train'))


def test_empty_folder(tmp_path):
    with pytest.raises(DataError, match='metadata.jsonl'): load_data(DataConfig(spec=str(tmp_path)))
    (tmp_path / 'metadata.jsonl').write_text('')
    with pytest.raises(DataError, match='empty'): load_data(DataConfig(spec=str(tmp_path)))


def test_all_empty_captions(tmp_path):
    (tmp_path / 'a.png').write_bytes(GOOD['gray.png'])
    (tmp_path / 'metadata.jsonl').write_text(json.dumps({'file_name': 'a.png', 'text': '  '}) + '\n'
                                             + json.dumps({'file_name': 'a.png', 'text': None}) + '\n')
    with pytest.raises(DataError, match='every caption is empty'): load_data(DataConfig(spec=str(tmp_path)))


def test_missing_text_column(tmp_path):
    (tmp_path / 'metadata.jsonl').write_text(json.dumps({'file_name': 'a.png', 'caption': 'x'}) + '\n')
    with pytest.raises(DataError, match="'text'"): load_data(DataConfig(spec=str(tmp_path)))
    pq = tmp_path / 'x.parquet'
    datasets.Dataset.from_dict({'image': [b'x'], 'caption': ['y']}).to_parquet(str(pq))
    with pytest.raises(DataError, match="'text'"): load_data(DataConfig(spec=str(pq)))


def test_unknown_spec():
    with pytest.raises(DataError, match="data spec 'nowhere/at/all': no such file or directory, and not one of shapes"):
        load_data(DataConfig(spec='nowhere/at/all'))
    with pytest.raises(DataError, match='heldout'): load_data(DataConfig(spec=__file__.replace('.py', '_x')), 'heldout')


@pytest.mark.parametrize('text', ['a pink horse', '', 'on a white background', 'a large red circle',
                                  'a large red circle in the middle on a white background',
                                  'a large red circle in the center on a white background and more',
                                  '🐴' * 50, 'a large red circle in the top left and a large red circle in the top left on a white background'])
def test_parse_caption_rejects_garbage(text):
    with pytest.raises(CaptionError, match='cannot parse caption'): parse_caption(text)
    assert issubclass(CaptionError, NarutoError)
