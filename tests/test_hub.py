"""A run on the Hub, without the Hub: the folder `naruto push` would upload, loaded back as a local run and by its
`hf://USER/NAME` name from a Hugging Face cache; the model card; push and fetch failing in one line."""
import hashlib, json, shutil
from pathlib import Path

import pytest

from conftest import naruto, one_line_error

PROMPT = 'a large red circle in the center on a white background'


def as_hub_snapshot(folder, repo, cache):
    "Lay `folder` out in Hugging Face cache `cache` as the snapshot of `repo` that snapshot_download leaves (one commit)."
    commit = hashlib.sha1(b''.join(f.read_bytes() for f in sorted(Path(folder).rglob('*')) if f.is_file())).hexdigest()
    base = Path(cache) / f"models--{repo.replace('/', '--')}"
    (base / 'refs').mkdir(parents=True, exist_ok=True)
    (base / 'refs' / 'main').write_text(commit)
    shutil.copytree(folder, base / 'snapshots' / commit)
    return base / 'snapshots' / commit


@pytest.fixture(scope='module')
def run(vq_run, tmp_path_factory):
    "A tiny CFTN v2 run (both curriculum stages, so it keeps stage2A/), evaluated into its own eval.json."
    out = tmp_path_factory.mktemp('hub') / 'cftn2'
    naruto('train', '--model', 'cftn2', '--vqvae', vq_run, '--preset', 'tiny', '--out', out, check=True)
    naruto('eval', '--ckpt', out, '--mode', 'oneshot', '--num_prompts', 10, '--judge_steps', 0, '--out', out / 'eval.json', check=True)
    return out


@pytest.fixture(scope='module')
def staged(run, tmp_path_factory):
    from naruto_core.hub import stage_for_hub
    return stage_for_hub(run, tmp_path_factory.mktemp('staged') / 'me-tiny', repo='me/tiny-cftn2')


def test_staged_folder_is_what_a_generator_needs(staged, run):
    files = {str(p.relative_to(staged)) for p in staged.rglob('*') if p.is_file()}
    need = {'generator.json', 'config.yaml', 'checkpoint/model.safetensors', 'stage2A/model.safetensors',
            'vqvae/model.safetensors', 'vqvae/config.yaml', 'tokenizer/tokenizer.json', 'README.md', 'samples.png', 'eval.json'}
    assert need <= files, need - files
    assert not {f for f in files if f.endswith('.pt') or f.startswith(('best/', 'checkpoint.prev/', 'samples/')) or f == '.lock'}, files
    for f in ('checkpoint/model.safetensors', 'vqvae/model.safetensors', 'tokenizer/tokenizer.json'):
        assert (staged / f).read_bytes() == (run / f).read_bytes(), f
    meta = json.loads((staged / 'generator.json').read_text())
    assert '/' not in meta['vqvae']['source']                       # no local path of the pusher's machine goes public


def test_round_trip_loads_and_generates_the_same(staged, run, tmp_path):
    "The staged folder stands in for the downloaded snapshot: the same model, the same pictures for the same seed."
    import torch
    from naruto_core.generators import load_generator
    from naruto_core.sampling import generate
    a, b = load_generator(run, device='cpu'), load_generator(staged, device='cpu')
    assert torch.equal(generate(a, PROMPT, num_samples=2, seed=1), generate(b, PROMPT, num_samples=2, seed=1))
    cap = load_generator(staged, device='cpu', which='captioner')     # the stage-2A weights went too
    assert cap.model.can_caption
    r1 = naruto('generate', '--ckpt', run, '--prompt', PROMPT, '--num_samples', 2, '--out', tmp_path / 'a.png', check=True)
    naruto('generate', '--ckpt', staged, '--prompt', PROMPT, '--num_samples', 2, '--out', tmp_path / 'b.png', check=True)
    assert (tmp_path / 'a.png').read_bytes() == (tmp_path / 'b.png').read_bytes(), r1.stderr


def test_staged_folder_keeps_the_fingerprint_checks(staged, tmp_path):
    bad = tmp_path / 'bad'
    shutil.copytree(staged, bad)
    f = bad / 'vqvae' / 'model.safetensors'
    f.write_bytes(f.read_bytes()[:-4] + b'\0\0\0\0')
    assert 'fingerprint' in one_line_error(naruto('generate', '--ckpt', bad, '--prompt', PROMPT, '--out', tmp_path / 'x.png'))


def test_hf_url_loads_from_the_cache_offline(staged, run, tmp_path):
    "`naruto generate --ckpt hf://USER/NAME` with HF_HUB_OFFLINE=1 reads the cached snapshot, as after a download."
    cache = tmp_path / 'hf-cache'
    as_hub_snapshot(staged, 'me/tiny-cftn2', cache)
    env = dict(HF_HUB_CACHE=str(cache), HF_HUB_OFFLINE='1')
    r = naruto('generate', '--ckpt', 'hf://me/tiny-cftn2', '--prompt', PROMPT, '--num_samples', 2, '--out', tmp_path / 'hub.png',
               env=env, check=True)
    naruto('generate', '--ckpt', run, '--prompt', PROMPT, '--num_samples', 2, '--out', tmp_path / 'local.png', check=True)
    assert (tmp_path / 'hub.png').read_bytes() == (tmp_path / 'local.png').read_bytes(), r.stderr
    naruto('caption', '--ckpt', 'hf://me/tiny-cftn2', '--image', tmp_path / 'hub.png', env=env, check=True)
    line = one_line_error(naruto('generate', '--ckpt', 'hf://me/not-pushed', '--prompt', PROMPT, '--out', tmp_path / 'n.png', env=env))
    assert 'hf://me/not-pushed' in line and 'not in the local Hugging Face cache' in line and 'HF_HUB_OFFLINE' in line
    assert 'hf://USER/NAME' in one_line_error(naruto('generate', '--ckpt', 'hf://no-user', '--prompt', PROMPT, env=env))


def test_model_card_renders_and_names_the_figures(staged, run):
    from huggingface_hub import ModelCard
    card = ModelCard.load(staged / 'README.md')
    assert card.data.library_name == 'naruto_core' and card.data.pipeline_tag == 'text-to-image'
    assert 'cftn2' in card.data.tags
    ev = json.loads((run / 'eval.json').read_text())
    for k in ('prompt_accuracy', 'heldout_prompt_accuracy', 'seconds_per_image'):
        assert f"{ev[k]:.4g}" in card.text, k
    assert 'prompt accuracy' in card.text and 'held-out' in card.text and '`eval.json`' in card.text
    val = [json.loads(l) for l in (run / 'metrics.jsonl').read_text().splitlines() if 'val_loss' in l][-1]
    assert f"`val_loss` {val['val_loss']:.4g}" in card.text and f"step {val['step']}" in card.text
    assert '![samples](samples.png)' in card.text and 'hf://me/tiny-cftn2' in card.text and '`tiny`' in card.text
    meta = json.loads((run / 'generator.json').read_text())
    assert meta['vqvae']['fingerprint'] in card.text and meta['tokenizer'] in card.text


def test_card_of_a_run_never_evaluated(vq_run, tmp_path):
    "No report: the card quotes the validation record and says how to add figures; no figure is invented."
    from naruto_core.hub import stage_for_hub
    out = tmp_path / 'gpt'
    naruto('train', '--model', 'gpt', '--vqvae', vq_run, '--preset', 'tiny', '--out', out, check=True)
    text = (stage_for_hub(out, tmp_path / 's') / 'README.md').read_text()
    assert 'naruto eval --ckpt RUN --out RUN/eval.json' in text and 'val_loss' in text and 'prompt accuracy' not in text
    assert not (tmp_path / 's' / 'eval.json').exists() and not (tmp_path / 's' / 'stage2A').exists()


def test_push_offline_is_one_line(run):
    line = one_line_error(naruto('push', '--ckpt', run, '--repo', 'me/tiny-cftn2', env=dict(HF_HUB_OFFLINE='1')))
    assert 'cannot push to me/tiny-cftn2' in line and 'HF_HUB_OFFLINE' in line


def test_push_without_token_is_one_line(run, tmp_path):
    env = dict(HF_HUB_OFFLINE='0', HF_TOKEN='', HF_HOME=str(tmp_path / 'hf-home'), HF_TOKEN_PATH=str(tmp_path / 'no-token'),
               HF_ENDPOINT='http://127.0.0.1:9')
    line = one_line_error(naruto('push', '--ckpt', run, '--repo', 'me/tiny-cftn2', env=env))
    assert 'no Hugging Face token' in line and 'HF_TOKEN' in line


def test_push_without_network_is_one_line(run, tmp_path):
    "A token but no Hub to reach (an endpoint nothing listens on): one line saying so, and nothing claims an upload."
    env = dict(HF_HUB_OFFLINE='0', HF_TOKEN='hf_not_a_real_token', HF_HOME=str(tmp_path / 'hf-home'), HF_ENDPOINT='http://127.0.0.1:9')
    r = naruto('push', '--ckpt', run, '--repo', 'me/tiny-cftn2', env=env, timeout=120)
    line = one_line_error(r)
    assert 'cannot push to me/tiny-cftn2' in line and 'cannot be reached' in line and '127.0.0.1:9' in line
    assert r.stdout == ''


def test_push_bad_input_is_one_line(run, vq_run):
    assert 'USER/NAME' in one_line_error(naruto('push', '--ckpt', run, '--repo', 'no-slash'))
    assert 'not a generator run' in one_line_error(naruto('push', '--ckpt', vq_run, '--repo', 'me/x', env=dict(HF_HUB_OFFLINE='1')))
