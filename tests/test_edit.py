"Editing with a masked model: codes outside the region kept bit for bit; naruto generate --init writes a PNG; every bad input is one line."
import json

import pytest
import torch
from PIL import Image

from conftest import naruto, one_line_error
from naruto_core.config import NarutoError
from naruto_core.editing import box_mask, code_mask, edit_tokens, encode_picture, extend, load_picture, vary
from naruto_core.generators import load_generator
from naruto_core.shapes import Scene, Shape, render

PROMPT = 'a large green circle in the top left and a small blue square in the bottom right on a white background'


@pytest.fixture(scope='module')
def runs(vq_run, tmp_path_factory):
    "A tiny CFTN v2 (masked) and a tiny GPT (autoregressive) on the shared tiny VQ-VAE."
    root = tmp_path_factory.mktemp('edit')
    for m in ('cftn2', 'gpt'): naruto('train', '--model', m, '--vqvae', vq_run, '--preset', 'tiny', '--out', root / m, check=True)
    return {m: root / m for m in ('cftn2', 'gpt')}


@pytest.fixture(scope='module')
def bundle(runs):
    return load_generator(runs['cftn2'], device='cpu')


@pytest.fixture(scope='module')
def picture(bundle, tmp_path_factory):
    "A 2-shape scene at the run's size, saved as PNG, with a region mask (white top-left quarter) beside it."
    S = bundle.cfg.data.image_size
    d = tmp_path_factory.mktemp('pics')
    render(Scene([Shape('circle', 'red', 'large', 'top left'), Shape('square', 'blue', 'small', 'bottom right')]), S).save(d / 'in.png')
    m = Image.new('L', (S, S), 0); m.paste(255, (0, 0, S // 2, S // 2)); m.save(d / 'mask.png')
    return d


@pytest.mark.parametrize('mode,steps,guidance', [('oneshot', 1, 0.0), ('iterative', 6, 0.0), ('iterative', 6, 1.0)])
def test_kept_codes_bit_identical(bundle, picture, mode, steps, guidance):
    S, g = bundle.cfg.data.image_size, bundle.space.grid
    x, wh = load_picture(picture / 'in.png', S)
    codes = encode_picture(bundle, x)
    gen = torch.Generator().manual_seed(0)
    keep = torch.stack([~code_mask(box_mask((0, 0, S // 2, S // 2), wh), g).flatten()] +
                       [torch.rand(g * g, generator=gen) < 0.6 for _ in range(7)])          # a box, then random regions
    out = edit_tokens(bundle, codes[None].expand(8, -1), keep, [PROMPT] * 8, mode=mode, steps=steps, guidance=guidance, seed=3)
    assert out.dtype == codes.dtype and out.shape == (8, g * g)
    assert torch.equal(out[keep], codes[None].expand(8, -1)[keep])         # outside the region: the picture's own codes
    assert (out[~keep] < bundle.space.codebook_size).all()                 # inside: every code decoded
    again = edit_tokens(bundle, codes[None].expand(8, -1), keep, [PROMPT] * 8, mode=mode, steps=steps, guidance=guidance, seed=3)
    assert torch.equal(out, again)                                         # a seed is a picture


def test_extend_and_vary_keep_the_rest(bundle, picture):
    S, g = bundle.cfg.data.image_size, bundle.space.grid
    x, _ = load_picture(picture / 'in.png', S)
    codes = encode_picture(bundle, x).view(g, g)
    assert extend(bundle, x, 'right', PROMPT, strip=1, num_samples=2).shape == (2, 3, S, S)
    assert vary(bundle, x, PROMPT, strength=0.5, num_samples=3).shape == (3, 3, S, S)
    from naruto_core.editing import shift_codes
    moved, keep = shift_codes(codes, 'right', 1)
    out = edit_tokens(bundle, moved.flatten()[None], keep.flatten()[None], [PROMPT])
    assert torch.equal(out.view(g, g)[:, :-1], codes[:, 1:])              # the picture moved one code left, exactly


@pytest.mark.parametrize('how', [['--box', '0,0,8,8'], ['--mask', 'mask.png'], ['--extend', 'left'], ['--strength', '0.3']],
                         ids=['box', 'mask', 'extend', 'strength'])
def test_cli_edit_writes_png(runs, picture, tmp_path, how):
    how = [str(picture / a) if a.endswith('.png') else a for a in how]
    png = tmp_path / 'edit.png'
    r = naruto('generate', '--ckpt', runs['cftn2'], '--prompt', PROMPT, '--init', picture / 'in.png', *how,
               '--steps', 4, '--num_samples', 2, '--out', png, check=True)
    res = json.loads(r.stdout)
    assert res['edit'] == how[0][2:] and res['num_samples'] == 2 and res['mode'] == 'iterative'
    im = Image.open(png); assert im.size[0] > im.size[1] > 0


BAD = {
    'mask of the wrong size': (['--mask', 'small_mask.png'], 'the mask is 5x5 but the image is'),
    'empty mask': (['--mask', 'empty_mask.png'], 'the mask is empty'),
    'unreadable mask': (['--mask', 'notes.txt'], 'cannot read mask'),
    'box outside the image': (['--box', '4,4,400,8'], 'lies outside the'),
    'empty box': (['--box', '8,4,8,12'], 'is empty'),
    'box not four numbers': (['--box', '1,2,3'], 'four whole pixel numbers'),
    'strength out of range': (['--strength', '1.5'], 'strength must be in (0, 1]'),
    'two edits at once': (['--box', '0,0,4,4', '--extend', 'up'], 'exactly one of'),
}


@pytest.mark.parametrize('case', list(BAD), ids=list(BAD))
def test_cli_bad_region_is_one_line(runs, picture, tmp_path, case):
    Image.new('L', (5, 5), 255).save(tmp_path / 'small_mask.png')
    S = load_generator(runs['cftn2'], device='cpu').cfg.data.image_size
    Image.new('L', (S, S), 0).save(tmp_path / 'empty_mask.png')
    (tmp_path / 'notes.txt').write_text('not a picture')
    args, msg = BAD[case]
    args = [str(tmp_path / a) if a.endswith(('.png', '.txt')) else a for a in args]
    r = naruto('generate', '--ckpt', runs['cftn2'], '--prompt', PROMPT, '--init', picture / 'in.png', *args, '--out', tmp_path / 'x.png')
    assert msg in one_line_error(r)
    assert not (tmp_path / 'x.png').exists()


def test_cli_bad_image_is_one_line(runs, tmp_path):
    (tmp_path / 'broken.png').write_bytes(b'\x89PNG\r\n\x1a\n' + b'\0' * 40)     # a PNG signature and nothing after it
    for f, msg in ((tmp_path / 'broken.png', 'cannot read image'), (tmp_path / 'missing.png', 'no such file')):
        r = naruto('generate', '--ckpt', runs['cftn2'], '--prompt', PROMPT, '--init', f, '--box', '0,0,4,4', '--out', tmp_path / 'x.png')
        line = one_line_error(r)
        assert msg in line and str(f) in line


def test_cli_edit_flags_need_init_and_a_masked_model(runs, picture, tmp_path):
    r = naruto('generate', '--ckpt', runs['cftn2'], '--prompt', PROMPT, '--box', '0,0,4,4', '--out', tmp_path / 'x.png')
    assert '--init IMAGE' in one_line_error(r)
    r = naruto('generate', '--ckpt', runs['cftn2'], '--prompt', PROMPT, '--init', picture / 'in.png', '--out', tmp_path / 'x.png')
    assert 'exactly one of' in one_line_error(r)
    r = naruto('generate', '--ckpt', runs['gpt'], '--prompt', PROMPT, '--init', picture / 'in.png', '--box', '0,0,4,4', '--out', tmp_path / 'x.png')
    assert "'gpt' is autoregressive" in one_line_error(r)
    r = naruto('generate', '--ckpt', runs['cftn2'], '--prompt', PROMPT, '--init', picture / 'in.png', '--box', '0,0,4,4',
               '--mode', 'ar', '--out', tmp_path / 'x.png')
    assert "mode 'oneshot' or 'iterative'" in one_line_error(r)


def test_python_bad_inputs(bundle):
    S = bundle.cfg.data.image_size
    from naruto_core.editing import edit
    x = torch.zeros(3, S, S)
    for mask, msg in ((torch.ones(S + 1, S), 'the mask is'), (torch.zeros(S, S), 'empty'), ((0, 0, S, S + 1), 'outside')):
        with pytest.raises(NarutoError, match=msg): edit(bundle, x, mask, PROMPT)
    with pytest.raises(NarutoError, match=r'\(3, H, W\)'): edit(bundle, torch.zeros(1, S, S), (0, 0, 4, 4), PROMPT)
