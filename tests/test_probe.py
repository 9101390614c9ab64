"The attribute probe as an instrument: it scores renders of prompts against those prompts, and its cache is safe."
import os
os.environ['HF_HUB_OFFLINE'] = '1'
os.environ['HF_DATASETS_OFFLINE'] = '1'
os.environ['WANDB_MODE'] = 'disabled'

import warnings

import pytest
import torch

from naruto_core import evaluation as ev
from naruto_core import probe as pb
from naruto_core.config import NarutoError
from naruto_core.shapes import CaptionError, parse_caption, pil_to_tensor, render

BUDGET = dict(steps=300, batch_size=32)  # a few seconds on 2 CPU cores; the full budget is the notebook's


@pytest.fixture(scope='session')
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp('probe_cache')


@pytest.fixture(scope='session')
def probe(cache):
    # One thread while training: on a shared 2-core machine two OpenMP threads competing with other processes
    # spin at their barriers and run several times slower than one.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try: return pb.load_or_train_probe(32, cache_dir=cache, **BUDGET)
    finally: torch.set_num_threads(threads)


def _renders(prompts, size=32):
    return torch.stack([pil_to_tensor(render(parse_caption(p), size)) for p in prompts])


def test_probe_scores_renders_of_eval_prompts(probe):
    prompts = ev.eval_prompts(64) + ev.eval_prompts(32, seed=1, heldout=True)
    images = _renders(prompts)
    own = ev.prompt_accuracy(ev.prompt_scores(probe, images, prompts))
    shuffled = ev.prompt_accuracy(ev.prompt_scores(probe, images, prompts[1:] + prompts[:1]))
    assert own['n'] == 96
    assert own['prompt_accuracy'] >= 0.95, own
    assert shuffled['prompt_accuracy'] < own['prompt_accuracy'] - 0.3, (own, shuffled)
    report = ev.split_report(ev.prompt_scores(probe, images, prompts))
    assert report['heldout']['prompt_accuracy'] >= 0.95, report['heldout']
    assert report['seen']['n'] + report['heldout']['n'] == 96
    assert report['one_shape']['n'] + report['two_shapes']['n'] == 96


def test_probe_reads_larger_images(probe):
    prompts = ev.eval_prompts(16, seed=2)
    scores = ev.prompt_scores(probe, _renders(prompts, 64), prompts)  # resized to the probe's 32 px
    assert ev.prompt_accuracy(scores)['prompt_accuracy'] >= 0.9


def test_cache_reloads_the_same_weights(probe, cache, monkeypatch):
    path = pb.probe_cache_path(32, cache)
    assert path.is_file() and [p.name for p in cache.iterdir()] == [path.name]  # no temporary file left
    def no_training(*a, **k): raise AssertionError("the cached probe should have been loaded, not retrained")
    monkeypatch.setattr(pb, 'train_probe', no_training)
    with warnings.catch_warnings():
        warnings.simplefilter('error', pb.ProbeCacheWarning)
        again = pb.load_or_train_probe(32, cache_dir=cache, **BUDGET)
    x = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        a, b = probe(x), again(x)
    for k in a: assert torch.equal(a[k], b[k]), k


def test_corrupt_cache_is_retrained_with_a_warning(tmp_path):
    path = pb.probe_cache_path(16, tmp_path)
    path.write_bytes(b'\x00garbage, not safetensors')
    with pytest.warns(pb.ProbeCacheWarning, match='retraining'):
        p = pb.load_or_train_probe(16, cache_dir=tmp_path, steps=3, batch_size=4)
    assert isinstance(p, pb.AttributeProbe) and not p.training
    with warnings.catch_warnings():
        warnings.simplefilter('error', pb.ProbeCacheWarning)
        pb.load_or_train_probe(16, cache_dir=tmp_path, steps=3, batch_size=4)  # the rewritten file loads cleanly


def test_cache_trained_with_other_settings_is_retrained(tmp_path):
    pb.load_or_train_probe(16, cache_dir=tmp_path, steps=2, batch_size=4)
    with pytest.warns(pb.ProbeCacheWarning, match='other settings'):
        pb.load_or_train_probe(16, cache_dir=tmp_path, steps=3, batch_size=4)


def test_default_cache_dir_follows_naruto_cache(tmp_path, monkeypatch):
    monkeypatch.setenv('NARUTO_CACHE', str(tmp_path))
    assert pb.probe_cache_path(32) == tmp_path / 'probe_32px_v1.safetensors'


def test_unparsable_prompts_are_reported_not_fatal(probe):
    lines = ev.eval_prompts(2) + ['draw me a dragon'] + ev.eval_prompts(1, seed=3)
    bad = ev.unparsable(lines)
    assert [(i, p) for i, p, _ in bad] == [(3, 'draw me a dragon')]
    assert 'dragon' in bad[0][2]
    with pytest.raises(CaptionError) as e:
        ev.prompt_scores(probe, torch.zeros(1, 3, 32, 32), ['draw me a dragon'])
    assert isinstance(e.value, NarutoError)
