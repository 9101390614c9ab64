"Stage 1 from the command line: train-vqvae, eval, encode, resume after a kill, one-line errors."
import json

import pytest
from safetensors.torch import load_file

from conftest import metrics, naruto, one_line_error


def test_train_eval_encode(vq_run):
    r = naruto('eval', '--ckpt', vq_run, check=True)
    res = json.loads(r.stdout)
    for k in ('psnr', 'codebook_usage', 'perplexity'): assert k in res
    assert 0 < res['codebook_usage'] <= 1 and res['perplexity'] >= 1 and res['psnr'] > 5
    assert (vq_run / 'codes' / 'train.safetensors').exists() and (vq_run / 'codes' / 'heldout.json').exists()
    steps = [m['step'] for m in metrics(vq_run) if 'loss' in m]
    assert steps == sorted(steps) and steps[-1] == 20


def test_larger_max_steps_continues(tmp_path):
    out = tmp_path / 'r'
    naruto('train-vqvae', '--preset', 'tiny', '--out', out, '--max_steps', 10, check=True)
    naruto('train-vqvae', '--preset', 'tiny', '--out', out, '--max_steps', 16, check=True)
    steps = [m['step'] for m in metrics(out) if 'loss' in m]
    assert steps == [2, 4, 6, 8, 10, 12, 14, 16]          # continued from 10, no restart from 0
    assert json.loads((out / 'checkpoint' / 'model.safetensors').read_bytes()[8:8 + int.from_bytes(
        (out / 'checkpoint' / 'model.safetensors').read_bytes()[:8], 'little')])['__metadata__']['step'] == '16'


@pytest.mark.parametrize('fault', ['step@13', 'ckpt_weights@20', 'ckpt_swap@20'])
def test_sigkill_resume_is_exact(tmp_path, fault):
    "Killed with SIGKILL (mid-training or mid-checkpoint), the same command resumes and ends bit-identical."
    ref, run = tmp_path / 'ref', tmp_path / 'killed'
    naruto('train-vqvae', '--preset', 'tiny', '--out', ref, check=True)
    r = naruto('train-vqvae', '--preset', 'tiny', '--out', run, env={'NARUTO_FAULT': fault})
    assert r.returncode == -9, r.stderr                     # really killed
    naruto('train-vqvae', '--preset', 'tiny', '--out', run, check=True)
    a, b = load_file(ref / 'checkpoint' / 'model.safetensors'), load_file(run / 'checkpoint' / 'model.safetensors')
    assert a.keys() == b.keys()
    for k in a: assert (a[k] == b[k]).all(), k
    la = [m.get('loss') for m in metrics(ref)]; lb = [m.get('loss') for m in metrics(run)]
    assert la == lb


@pytest.mark.parametrize('args,needle', [
    (['train-vqvae', '--preset', 'tiny', '--set', 'vq.codebok_size=8'], 'vq.codebok_size'),
    (['train-vqvae', '--preset', 'tiny', '--set', 'vq.codebook_size=-3'], 'codebook_size'),
    (['train-vqvae', '--preset', 'tiny', '--set', 'train_vq.lr=fast'], 'train_vq.lr'),
    (['train-vqvae', '--preset', 'gigantic'], 'gigantic'),
    (['train-vqvae', '--preset', 'tiny', '--data', '/no/such/folder'], '/no/such/folder'),
    (['train-vqvae', '--preset', 'tiny', '--bogus'], '--bogus'),
    (['eval', '--ckpt', '/no/such/run'], '/no/such/run'),
    (['encode', '--vqvae', '/no/such/run'], '/no/such/run'),
])
def test_user_errors_are_one_line(tmp_path, args, needle):
    line = one_line_error(naruto(*args, '--out', tmp_path / 'o') if args[0] == 'train-vqvae' else naruto(*args))
    assert needle in line


def test_unwritable_out(tmp_path):
    blocker = tmp_path / 'a-file'; blocker.write_text('not a directory')
    line = one_line_error(naruto('train-vqvae', '--preset', 'tiny', '--out', blocker / 'run'))
    assert str(blocker) in line


def test_second_run_on_same_dir_refused(tmp_path):
    import fcntl, os
    out = tmp_path / 'r'; out.mkdir()
    with open(out / '.lock', 'w') as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)     # another process holds the run
        line = one_line_error(naruto('train-vqvae', '--preset', 'tiny', '--out', out))
    assert 'in use' in line


def test_nan_loss_stops_with_message(tmp_path):
    out = tmp_path / 'r'
    line = one_line_error(naruto('train-vqvae', '--preset', 'tiny', '--out', out, '--set', 'train_vq.lr=1e30',
                                 '--set', 'train_vq.grad_clip=0'))
    assert 'step' in line and ('nan' in line.lower() or 'inf' in line.lower())
