"`--use_wandb` offline: a tiny VQ-VAE and CFTN v2 trained with W&B, their eval reports logged; the offline runs hold the media."
import json
from pathlib import Path

from conftest import metrics, naruto

WB = {'WANDB_MODE': 'offline', 'WANDB_SILENT': 'true'}


def offline_runs(run) -> list:
    return sorted((Path(run) / 'wandb').glob('offline-run-*'))


def media(run_folder, kind: str) -> list:
    return sorted(p.name for p in (run_folder / 'files' / 'media' / kind).glob('*'))


def record_bytes(run_folder) -> bytes:
    "The offline run's record file (protobuf records): what `wandb sync` uploads; searched for names."
    return next(run_folder.glob('*.wandb')).read_bytes()


def test_wandb_offline_media(tmp_path):
    vq, gen = tmp_path / 'vq', tmp_path / 'gen'
    naruto('train-vqvae', '--preset', 'tiny', '--out', vq, '--use_wandb', '--wandb_artifacts', env=WB, check=True, timeout=300)
    (r_vq,) = (r,) = offline_runs(vq)
    assert [n for n in media(r, 'images') if n.startswith('recon_')], media(r, 'images')     # reconstruction grids
    rec = record_bytes(r)
    for name in (b'val_psnr', b'val_codebook_usage', b'vqvae-vq-model', b'latest', b'step-20'):   # curves; checkpoints as artifacts
        assert name in rec, name

    naruto('encode', '--vqvae', vq, check=True)
    naruto('train', '--model', 'cftn2', '--vqvae', vq, '--preset', 'tiny', '--out', gen, '--use_wandb', env=WB, check=True, timeout=300)
    (r,) = offline_runs(gen)
    imgs, tables = media(r, 'images'), media(r, 'table')
    assert len([n for n in imgs if n.startswith('samples_') and not n.startswith('samples_table')]) == 2, imgs   # a grid per validation
    assert [n for n in tables if n.startswith('samples_table') and n.endswith('.table.json')], tables            # the table, at the end
    table = json.loads((r / 'files' / 'media' / 'table' / next(n for n in tables if n.startswith('samples_table'))).read_text())
    assert table['columns'] == ['prompt', 'image', 'prompt_score'] and len(table['data']) == 8, table['columns']
    assert all(isinstance(row[0], str) and 0 <= row[2] <= 1 for row in table['data'])
    rec = record_bytes(r)
    run_id = r.name.rsplit('-', 1)[1]                  # the table's pictures travel in its artifact, staged for `wandb sync`
    assert f'run-{run_id}-samples_table'.encode() in rec and b'media/images/' in rec
    assert all(row[1] == 'Image' for row in table['data'])
    gates = [k for k in metrics(gen)[0] if '<-' in k]                      # gate and bridge-strength curves of CFTN v2
    assert gates and all(k.encode() in rec for k in gates), gates
    assert b'val_prompt_score' in rec and b'cftn2-gen-model' not in rec        # the score's curve; no artifacts unasked
    assert (gen / 'samples' / 'samples_table_000020.json').exists()        # and always the local records

    r_eval = naruto('eval', '--ckpt', gen, '--num_prompts', '4', '--judge_steps', '0', '--use_wandb', env=WB, check=True, timeout=300)
    res = json.loads(r_eval.stdout)                                         # stdout is still the report alone
    runs = offline_runs(gen)
    assert len(runs) == 2
    ev = next(x for x in runs if x != r)
    rec = record_bytes(ev)
    assert b'eval' in rec and b'prompt_accuracy' in rec and str(res['prompt_accuracy']).encode()[:5] in rec
    assert len(media(ev, 'table')) == 2 and media(ev, 'images')             # the figures and the samples' table; the grid

    naruto('eval', '--ckpt', vq, '--use_wandb', env=WB, check=True, timeout=300)
    (ev,) = [x for x in offline_runs(vq) if x != r_vq]
    assert [n for n in media(ev, 'images') if n.startswith('recon')] and b'psnr' in record_bytes(ev)


def test_without_wandb_nothing_is_written(tmp_path):
    "WANDB_MODE=disabled (as the other tests run): no wandb folder, the run's own records as always."
    out = tmp_path / 'vq'
    naruto('train-vqvae', '--preset', 'tiny', '--out', out, '--use_wandb', '--set', 'train_vq.max_steps=4', check=True)
    assert not (out / 'wandb').exists() and metrics(out)
