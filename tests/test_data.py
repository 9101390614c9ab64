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
    "No caption column under any of its names: one line naming the columns there are."
    (tmp_path / 'metadata.jsonl').write_text(json.dumps({'file_name': 'a.png', 'label': 'x'}) + '\n')
    with pytest.raises(DataError, match="no 'text' column .*columns: file_name, label"): load_data(DataConfig(spec=str(tmp_path)))
    pq = tmp_path / 'x.parquet'
    datasets.Dataset.from_dict({'image': [b'x'], 'label': ['y']}).to_parquet(str(pq))
    with pytest.raises(DataError, match="no 'text' column .*columns: image, label"): load_data(DataConfig(spec=str(pq)))
    datasets.Dataset.from_dict({'picture': [b'x'], 'text': ['y']}).to_parquet(str(pq))
    with pytest.raises(DataError, match="no 'image' column .*columns: picture, text"): load_data(DataConfig(spec=str(pq)))
    datasets.Dataset.from_dict({'image': [3], 'text': ['y']}).to_parquet(str(pq))
    with pytest.raises(DataError, match="column 'image' holds"): load_data(DataConfig(spec=str(pq)))


# -- sets as people make them: tiny, odd or partly broken ------------------------------------------------------------

def _png(colour) -> bytes: return _png_bytes(Image.new('RGB', (8, 8), colour))


def _folder(root: Path, rows: list, key: str = 'text') -> Path:
    "An imagefolder of (file name, bytes, caption) rows."
    root.mkdir(parents=True, exist_ok=True)
    for name, data, _ in rows: (root / name).write_bytes(data)
    (root / 'metadata.jsonl').write_text(''.join(json.dumps({'file_name': n, key: c}) + '\n' for n, _, c in rows))
    return root


def _splits(spec: str, **kw):
    "Both splits of `spec`, every item read once, and the DataWarnings raised doing so."
    cfg = DataConfig(spec=spec, image_size=SIZE, **kw)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        tr, va = load_data(cfg, 'train'), load_data(cfg, 'val')
        items = [d[k] for d in (tr, va) for k in range(len(d))]
    return tr, va, items, [str(x.message) for x in w if issubclass(x.category, DataWarning)]


def test_too_small_for_a_val_split_is_one_line(tmp_path):
    from conftest import naruto, one_line_error
    root = _folder(tmp_path / 'one', [('a.png', _png((200, 0, 0)), 'a red square')])
    with pytest.raises(DataError, match='1 item: too few to hold out a validation split'): load_data(DataConfig(spec=str(root)))
    assert 'too few to hold out a validation split' in one_line_error(naruto('train-vqvae', '--preset', 'tiny', '--data', root,
                                                                               '--out', tmp_path / 'run'))
    root = _folder(tmp_path / 'two', [('a.png', _png((200, 0, 0)), 'a red square'), ('b.png', b'broken', 'a broken square')])
    with pytest.raises(DataError, match='one readable image'): load_data(DataConfig(spec=str(root)))


def test_identical_captions_warn_the_judge_cannot_separate_them(tmp_path):
    root = _folder(tmp_path / 'same', [(f'{i}.png', _png((30 * i, 0, 0)), 'an emoji') for i in range(5)])
    *_, msgs = _splits(str(root))
    assert msgs and all('every caption is the same' in m and 'judge' in m for m in msgs), msgs
    root = _folder(tmp_path / 'differ', [(f'{i}.png', _png((30 * i, 0, 0)), f'emoji {i}') for i in range(5)])
    assert _splits(str(root))[-1] == []


def test_val_split_on_broken_files_still_trains(tmp_path):
    "The val candidates are all broken: the split is drawn among the readable items; each broken file warns once, from train."
    from naruto_core.data import split_indices
    from conftest import naruto
    n, frac = 8, 0.2
    cand = split_indices(n, frac)[1]
    rows = [(f'{i}.png', b'not a picture' if i in cand else _png((25 * i, 100, 0)), f'picture {i}') for i in range(n)]
    root = _folder(tmp_path / 'folder', rows)
    pq = tmp_path / 'data.parquet'
    datasets.Dataset.from_dict({'image': [{'bytes': d, 'path': None} for _, d, _ in rows], 'text': [c for *_, c in rows]},
                               features=datasets.Features({'image': datasets.Image(), 'text': datasets.Value('string')})).to_parquet(str(pq))
    for spec in (str(root), str(pq)):
        tr, va, items, msgs = _splits(spec, val_fraction=frac)
        assert len(va) > 0 and all(va[k] is not None for k in range(len(va))), spec
        assert set(cand) <= set(tr.indices) and sorted(tr.indices + va.indices) == list(range(n))
        assert sum(it is None for it in items) == len(cand) and len(msgs) == len(cand), msgs
    r = naruto('train-vqvae', '--preset', 'tiny', '--data', root, '--out', tmp_path / 'vq', '--max_steps', 4,
               '--set', 'train_vq.eval_every=2', check=True)
    for i in cand: assert r.stderr.count(f'skipping unreadable image {i}.png') == 1, r.stderr


@pytest.mark.parametrize('key', ['caption', 'prompt'])
def test_caption_column_named_otherwise(tmp_path, key):
    rows = [(f'{i}.png', _png((40 * i, 0, 0)), f'picture {i}') for i in range(4)]
    _, _, items, msgs = _splits(str(_folder(tmp_path / 'f', rows, key=key)))
    assert sorted(c for _, c in items) == [f'picture {i}' for i in range(4)] and not msgs
    pq = tmp_path / 'p.parquet'
    datasets.Dataset.from_dict({'image': [d for _, d, _ in rows], key: [c for *_, c in rows]}).to_parquet(str(pq))
    _, _, items, msgs = _splits(str(pq))
    assert sorted(c for _, c in items) == [f'picture {i}' for i in range(4)] and not msgs


def test_missing_captions_are_left_out_with_one_warning(tmp_path):
    caps = ['a cat', None, 'a dog', '   ', 'a bird', 'a fish']
    pq = tmp_path / 'p.parquet'
    datasets.Dataset.from_dict({'image': [_png((40 * i, 0, 0)) for i in range(6)], 'caption': caps}).to_parquet(str(pq))
    tr, va, items, msgs = _splits(str(pq))
    assert sorted(c for _, c in items) == ['a bird', 'a cat', 'a dog', 'a fish']
    assert sorted(tr.indices + va.indices) == [0, 2, 4, 5]
    assert set(msgs) == {f"data spec '{pq}': 2 of 6 rows have no caption (column 'caption'); they are left out"}, msgs
    root = tmp_path / 'f'; root.mkdir()                      # a folder: a row without the caption key at all
    for i in range(3): (root / f'{i}.png').write_bytes(_png((0, 40 * i, 0)))
    (root / 'metadata.jsonl').write_text(json.dumps({'file_name': '0.png', 'text': 'x'}) + '\n' + json.dumps({'file_name': '1.png'})
                                         + '\n' + json.dumps({'file_name': '2.png', 'text': 'y'}) + '\n')
    _, _, items, msgs = _splits(str(root))
    assert sorted(c for _, c in items) == ['x', 'y'] and any('1 of 3 rows have no caption' in m for m in msgs)


def test_image_column_of_file_paths(tmp_path):
    "A parquet whose `image` column holds file paths, relative to the parquet's folder or absolute; a missing one warns."
    (tmp_path / 'img').mkdir()
    for i in range(4): (tmp_path / 'img' / f'{i}.png').write_bytes(_png((0, 0, 50 * i)))
    paths = ['img/0.png', 'img/1.png', str(tmp_path / 'img' / '2.png'), 'img/3.png', 'img/gone.png']
    pq = tmp_path / 'p.parquet'
    datasets.Dataset.from_dict({'image': paths, 'text': [f'picture {i}' for i in range(5)]}).to_parquet(str(pq))
    tr, va, items, msgs = _splits(str(pq))
    assert sum(it is not None for it in items) == 4 and all(it[0].shape == (3, SIZE, SIZE) for it in items if it is not None)
    assert 4 in tr.indices and len(msgs) == 1 and 'gone.png' in msgs[0], msgs


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
