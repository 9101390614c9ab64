"`naruto bench --claims DIR --preset tiny`: the JSON's structure and the files it leaves, a rerun that reuses every part, bad input in one line. Not the figures: at the tiny preset they mean nothing (16_claims has the cpu ones)."
import importlib.util, json, shutil, time
from pathlib import Path

import pytest

from conftest import naruto, one_line_error, real_parquet

pytestmark = pytest.mark.skipif(importlib.util.find_spec('diffusers') is None,
                                reason="the claims' diffusion peer needs diffusers (pip install -e '.[bench]', or the dev extra)")

PARTS = {'speed.shapes', 'speed.real', 'speed.sizes', 'curriculum.shapes', 'curriculum.real', 'average_trap', 'scaling.shapes', 'scaling.real'}
PNGS = {'speed.png', 'curriculum.png', 'average_trap.png', 'average_trap_pictures.png', 'scaling.png'}


def _env(tmp_path):
    "A cache of its own (judges), with the 16-pixel probe copied in when there is one, so it is not trained again."
    cache = tmp_path/'cache'; cache.mkdir(exist_ok=True)
    probe = Path.home()/'.cache'/'naruto_core'/'probe_16px_v1.safetensors'
    if probe.exists(): shutil.copy(probe, cache/probe.name)
    return dict(NARUTO_CACHE=str(cache))


def test_claims_tiny_json(tmp_path):
    data, out = real_parquet(tmp_path/'real.parquet'), tmp_path/'claims'
    t0 = time.perf_counter()
    r = naruto('bench', '--claims', out, '--preset', 'tiny', '--data', data, env=_env(tmp_path), timeout=900, check=True)
    first = time.perf_counter() - t0
    res = json.loads(r.stdout)
    assert set(res['claims']) == {'speed', 'curriculum', 'average_trap', 'scaling'}
    for c in res['claims'].values(): assert c['seeds'] and c['peer'] and all(isinstance(v, str) and v for v in c['verdict'].values())
    assert set(res['claims']['speed']['verdict']) == {'shapes', 'real', 'sizes'}
    assert {p.stem for p in (out/'parts').glob('*.json')} == PARTS
    assert {p.name for p in out.glob('*.png')} == PNGS
    assert json.loads((out/'claims.json').read_text())['claims'] == res['claims']
    parts = res['parts']
    for s, d in parts['speed'].items():                     # every model and sampler setting, timed and scored
        key = 'prompt_accuracy' if s == 'shapes' else 'r_precision'
        assert d['quality_key'] == key
        pairs = {(p['model'], p['setting']) for p in d['points']}
        assert {('cftn2', 'oneshot'), ('cftn2', 'iterative_12'), ('cftn', 'oneshot'), ('gpt', 'ar'),
                ('diffusion', 'dpm_10'), ('diffusion', 'dpm_20'), ('diffusion', 'ddim_50')} <= pairs
        for p in d['points']:
            assert p['ms_per_image'] > 0 and p['flops_per_image'] > 0 and 0 <= p[key] <= 1 and p['sharpness'] >= 0
            if s == 'real': assert 'kid' in p
            else: assert 'heldout' in p
        assert d['models']['diffusion']['train_steps'] > 0 and d['models']['diffusion']['params'] > 0
        v = d['verdict']
        assert v['oneshot_ms'] > 0 and v['speedup_over_fastest_diffusion'] > 0
        assert (v['diffusion_at_equal_or_better'] is None) == (v['speedup_at_equal_quality'] is None)
    z = parts['sizes']
    assert {'cftn2/oneshot', 'cftn2/iterative_12', 'diffusion_pixels/ddim_50', 'diffusion_latents/dpm_10'} <= set(z['times_ms'])
    assert all(t > 0 for t in z['times_ms'].values())
    for d in parts['curriculum'].values():
        assert set(d['summary']) == {'2A-2B', '2B', '2A'}
        assert {r['variant'] for r in d['runs']} == {'2A-2B', '2B', '2A'}
        assert all(('captions' in r) == (r['variant'] != '2B') for r in d['runs'])
        assert d['summary']['2B'][f"oneshot/{d['quality_key']}"]['n'] == len(d['seeds'])
    t = parts['average_trap']
    assert {'oneshot_argmax', 'oneshot_sampled', 'iterative_4', 'iterative_12_g3', 'real pictures', 'VQ-VAE reconstructions'} <= set(t['rows'])
    assert t['rows']['oneshot_argmax']['diversity']['pixel'] == pytest.approx(0, abs=1e-6)   # argmax: one picture per prompt
    for d in parts['scaling'].values():
        assert {e['dim'] for e in d['lines'].values()} == {16, 32, 64} and {e['model'] for e in d['lines'].values()} == {'cftn', 'cftn2'}
        assert all(e['curve'] and all(c['flops'] > 0 and c['val_loss'] > 0 for c in e['curve']) for e in d['lines'].values())
    print(r.stderr[-2000:])

    # rerun: every part is reused, nothing is trained again
    t0 = time.perf_counter()
    again = naruto('bench', '--claims', out, '--preset', 'tiny', '--data', data, env=_env(tmp_path), timeout=600, check=True)
    assert time.perf_counter() - t0 < first / 2
    assert json.loads(again.stdout)['claims'] == res['claims']
    assert ': training ' not in again.stderr and again.stderr.count('reusing') == len(PARTS)


def test_claims_bad_input_is_one_line(tmp_path):
    assert 'gpu' in one_line_error(naruto('bench', '--claims', tmp_path/'c', '--preset', 'gpu'))
    from naruto_core.config import load_config, save_config
    save_config(load_config('tiny'), tmp_path/'c'/'real'/'vqvae'/'config.yaml')     # a shapes VQ-VAE where the real set's belongs
    data = real_parquet(tmp_path/'real.parquet')
    line = one_line_error(naruto('bench', '--claims', tmp_path/'c', '--preset', 'tiny', '--data', data, env=_env(tmp_path)))
    assert "'shapes'" in line and 'real.parquet' in line, line
