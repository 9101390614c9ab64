"CFTN v2's bridge settings of round 39 from the command line: no gate, reading at the block's input; exact resume, bad values."
import pytest
import torch
from safetensors.torch import load_file

from conftest import metrics, naruto, one_line_error

ONE_SEQUENCE = ('--set', 'gen.gate=none', '--set', 'gen.fusion=input')


def test_no_gate_reading_at_the_input_trains_resumes_exactly_and_generates(vq_run, tmp_path):
    """Both settings together through the stage switch: killed at step 14, the run resumes to the uninterrupted run's weights
    and curve; the checkpoint holds no gate parameter (the bridges add all they read), and the run generates and captions."""
    ref, run = tmp_path / 'ref', tmp_path / 'killed'
    args = ('train', '--model', 'cftn2', '--vqvae', vq_run, '--preset', 'tiny', '--set', 'train_gen.ckpt_every=4', *ONE_SEQUENCE)
    naruto(*args, '--out', ref, check=True)
    r = naruto(*args, '--out', run, env={'NARUTO_FAULT': 'step@14'})
    assert r.returncode == -9, r.stderr
    naruto(*args, '--out', run, check=True)
    a, b = load_file(ref / 'checkpoint' / 'model.safetensors'), load_file(run / 'checkpoint' / 'model.safetensors')
    assert set(a) == set(b) and not any(k.endswith('.g') for k in a), sorted(k for k in a if k.endswith('.g'))
    assert any('bridges' in k for k in a)                                   # the bridges are there, without gates
    for k in a: assert torch.equal(a[k], b[k]), k
    assert [m.get('loss') for m in metrics(ref)] == [m.get('loss') for m in metrics(run)]
    assert {v for m in metrics(run) for k, v in m.items() if k.startswith('gate/')} == {1.0}
    naruto('generate', '--ckpt', run, '--prompt', 'a red circle', '--mode', 'iterative', '--steps', 3, '--guidance', 2,
           '--out', tmp_path / 'g.png', check=True)
    naruto('caption', '--ckpt', run, '--image', tmp_path / 'g.png', check=True)


def test_a_gated_checkpoint_does_not_load_as_ungated(vq_run, tmp_path):
    "Weights trained with gates, sampled with gen.gate=none edited into the run's config: one line naming the gates, not a silent load."
    run = tmp_path / 'gated'
    naruto('train', '--model', 'cftn2', '--vqvae', vq_run, '--preset', 'tiny', '--set', 'train_gen.max_steps=4',
           '--set', 'train_gen.ckpt_every=4', '--out', run, check=True)
    cfg = run / 'config.yaml'
    text = cfg.read_text()
    assert 'gate: sigmoid' in text
    cfg.write_text(text.replace('gate: sigmoid', 'gate: none'))
    line = one_line_error(naruto('generate', '--ckpt', run, '--prompt', 'a red circle', '--out', tmp_path / 'x.png'))
    assert 'unexpected' in line and "bridges.0.g'" in line, line   # the gates the config no longer has, by name


@pytest.mark.parametrize('sets,needle', [(('gen.gate=none', 'gen.gate_init=1'), 'gate_init'),
                                          (('gen.fusion=inputs',), 'fusion'), (('gen.gate=open',), 'gate')])
def test_bad_bridge_settings_are_one_line(vq_run, tmp_path, sets, needle):
    args = [x for s in sets for x in ('--set', s)]
    line = one_line_error(naruto('train', '--model', 'cftn2', '--vqvae', vq_run, '--preset', 'tiny', *args, '--out', tmp_path / 'bad'))
    assert needle in line, line
