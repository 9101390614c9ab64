"""Checkpoints you can trust, from the command line: a corrupt state.pt falls back to checkpoint.prev with a warning,
a state.pt carrying pickled code is refused without running it, an edited config.yaml or a `--set` that changes the
model on resume ends in one line, and the run is left as it was."""
import hashlib, os, shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import metrics, naruto, one_line_error

ENV = {'OMP_NUM_THREADS': '1'}


def _sha(p): return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def _warnings(r): return [l for l in r.stderr.splitlines() if l.startswith('warning:')]


@pytest.fixture(scope='module')
def base(tmp_path_factory):
    "A finished tiny VQ-VAE run (checkpoint/ at step 20, checkpoint.prev/ at 10, best/) that each test copies."
    out = tmp_path_factory.mktemp('rel') / 'base'
    naruto('train-vqvae', '--preset', 'tiny', '--out', out, env=ENV, check=True)
    return out


@pytest.fixture
def run(base, tmp_path):
    dst = tmp_path / 'run'
    shutil.copytree(base, dst, ignore=shutil.ignore_patterns('codes'))
    return dst


@pytest.mark.parametrize('damage', ['truncated', 'garbage'])
def test_corrupt_state_falls_back_to_prev(run, base, damage):
    "A damaged checkpoint/state.pt: one warning naming it, resume from checkpoint.prev (step 10), same final weights."
    f = run / 'checkpoint' / 'state.pt'
    f.write_bytes(f.read_bytes()[:len(f.read_bytes()) // 3] if damage == 'truncated' else bytes(range(256)) * 16)
    r = naruto('train-vqvae', '--preset', 'tiny', '--out', run, env=ENV, check=True)
    assert 'Traceback' not in r.stderr, r.stderr
    w = _warnings(r)
    assert len(w) == 1 and str(f) in w[0] and 'checkpoint.prev/ (step 10)' in w[0], r.stderr
    steps = [m['step'] for m in metrics(run) if 'loss' in m]
    assert steps == list(range(2, 21, 2))                       # retrained 11..20 once, no duplicated lines
    a, b = load_file(base / 'checkpoint' / 'model.safetensors'), load_file(run / 'checkpoint' / 'model.safetensors')
    for k in a: assert (a[k] == b[k]).all(), k                  # exact resume from the older checkpoint


class Payload:
    "Pickles to a call of os.system: loading it with plain pickle would create the marker file."
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (os.system, (f'touch {self.marker}',))


def test_pickled_code_in_state_is_refused(run, tmp_path):
    marker = tmp_path / 'PWNED'
    good = {d: (run / d / 'state.pt').read_bytes() for d in ('checkpoint', 'checkpoint.prev', 'best')}
    for d in good: torch.save({'step': 20, 'x': Payload(marker)}, run / d / 'state.pt')
    before = _sha(run / 'checkpoint' / 'state.pt')
    line = one_line_error(naruto('train-vqvae', '--preset', 'tiny', '--out', run, '--max_steps', 22, env=ENV))
    assert 'refusing to load' in line and str(run / 'checkpoint' / 'state.pt') in line
    assert not marker.exists(), "loading a checkpoint ran code"
    assert _sha(run / 'checkpoint' / 'state.pt') == before      # nothing was overwritten
    # only the newest one carries code: refused with a warning, the run resumes from checkpoint.prev
    (run / 'checkpoint.prev' / 'state.pt').write_bytes(good['checkpoint.prev'])
    (run / 'best' / 'state.pt').write_bytes(good['best'])
    r = naruto('train-vqvae', '--preset', 'tiny', '--out', run, env=ENV, check=True)
    w = _warnings(r)
    assert len(w) == 1 and 'refusing to load' in w[0] and 'checkpoint.prev/ (step 10)' in w[0], r.stderr
    assert not marker.exists()
    assert max(m['step'] for m in metrics(run)) == 20


@pytest.mark.parametrize('edit,needle', [
    (('vq:', 'vq:\n  colour: red'), "unknown config key 'vq.colour'"),
    (('preset:', 'bogus: 1\npreset:'), "unknown config key 'bogus'"),
    (('codebook_size: 32', 'codebook_size: many'), "'vq.codebook_size' expects int"),
    (('  fusion: input\n', ''), "does not say gen.fusion"),         # a field whose default changed: not filled in silently
])
def test_edited_config_yaml_is_one_line(run, edit, needle):
    cfg = run / 'config.yaml'
    text = cfg.read_text(); assert edit[0] in text
    cfg.write_text(text.replace(edit[0], edit[1], 1))
    before = _sha(run / 'checkpoint' / 'model.safetensors')
    line = one_line_error(naruto('train-vqvae', '--out', run, '--max_steps', 22, env=ENV))
    assert needle in line
    assert _sha(run / 'checkpoint' / 'model.safetensors') == before


def test_set_that_changes_the_model_on_resume(run, base, tmp_path):
    "A `--set` that changes layer sizes on resume: one line saying the checkpoint does not fit; nothing is lost."
    line = one_line_error(naruto('train-vqvae', '--out', run, '--max_steps', 22, '--set', 'vq.hidden=48', env=ENV))
    assert 'does not fit' in line and 'checkpoint/model.safetensors' in line and 'encoder' in line
    gen = tmp_path / 'gen'
    args = ('train', '--model', 'cftn2', '--vqvae', base, '--preset', 'tiny', '--out', gen)
    naruto(*args, '--max_steps', 2, env=ENV, check=True)           # a 2-layer CFTN v2 (the tiny preset)
    before = _sha(gen / 'checkpoint' / 'model.safetensors'), (gen / 'metrics.jsonl').read_text()
    line = one_line_error(naruto(*args, '--max_steps', 4, '--set', 'gen.layers=3', env=ENV))
    assert 'does not fit' in line and str(gen / 'checkpoint' / 'model.safetensors') in line
    assert (_sha(gen / 'checkpoint' / 'model.safetensors'), (gen / 'metrics.jsonl').read_text()) == before
