"Stage 2 from the command line: every generator trains, generates and is scored; odd prompts; exact resume across 2A->2B."
import hashlib, json, os
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from conftest import metrics, naruto, one_line_error


def _sha(p): return hashlib.sha256(Path(p).read_bytes()).hexdigest()


@pytest.fixture(scope='module')
def runs(vq_run, tmp_path_factory):
    "Tiny runs of all four generators on the same VQ-VAE; checks that the VQ-VAE stays frozen."
    root = tmp_path_factory.mktemp('gen')
    before = _sha(vq_run / 'checkpoint' / 'model.safetensors'), _sha(vq_run / 'codes' / 'train.safetensors')
    out = {}
    for m in ('lstm', 'gpt', 'cftn', 'cftn2'):
        out[m] = root / m
        naruto('train', '--model', m, '--vqvae', vq_run, '--preset', 'tiny', '--out', out[m], check=True)
    after = _sha(vq_run / 'checkpoint' / 'model.safetensors'), _sha(vq_run / 'codes' / 'train.safetensors')
    assert before == after, "training generators must not change the frozen VQ-VAE or its codes"
    return out


@pytest.mark.parametrize('model,mode', [('lstm', 'ar'), ('gpt', 'ar'), ('cftn', 'iterative'), ('cftn', 'oneshot'),
                                        ('cftn2', 'oneshot'), ('cftn2', 'iterative')])
def test_generate_every_model(runs, tmp_path, model, mode):
    png = tmp_path / 'g.png'
    r = naruto('generate', '--ckpt', runs[model], '--prompt', 'a large red circle in the center on a white background',
               '--mode', mode, '--steps', 4, '--num_samples', 3, '--out', png, check=True)
    assert json.loads(r.stdout)['num_samples'] == 3
    im = Image.open(png); assert im.size[0] > im.size[1] > 0    # one row of three 16 px images


def test_sampler_schedules_reach_the_sampler(runs, tmp_path):
    "`--guidance_schedule`, `--choice_temperature`, `--revise`, `--temperature_schedule` change `generate`'s pictures; `eval` records them."
    base = ['--ckpt', runs['cftn2'], '--mode', 'iterative', '--steps', 4, '--guidance', 3]
    pngs = {}
    for name, extra in (('default', []), ('linear', ['--guidance_schedule', 'linear']), ('nonoise', ['--choice_temperature', 0]),
                        ('revise', ['--revise', 0.5]), ('tconst', ['--temperature_schedule', 'constant'])):
        pngs[name] = tmp_path / f'{name}.png'
        naruto('generate', *base, '--prompt', 'a large red circle in the center on a white background', '--num_samples', 4,
               '--out', pngs[name], *extra, check=True)
    pix = {k: Image.open(v).tobytes() for k, v in pngs.items()}
    assert all(pix[k] != pix['default'] for k in ('linear', 'nonoise', 'revise', 'tconst'))
    r = naruto('eval', *base, '--guidance_schedule', 'linear', '--choice_temperature', 0, '--revise', 0.25, '--num_prompts', 10,
               '--temperature_schedule', 'constant', '--judge_steps', 0, check=True)
    res = json.loads(r.stdout)
    assert (res['guidance_schedule'], res['choice_temperature'], res['revise'], res['temperature_schedule']) == ('linear', 0, 0.25, 'constant')


def test_oneshot_temperature_samples_one_pass(runs, tmp_path):
    "`--oneshot_temperature`: one-shot argmax draws the same picture for every seed; sampled, another seed draws another, the same seed the same."
    base = ['--ckpt', runs['cftn2'], '--mode', 'oneshot', '--prompt', 'a large red circle in the center on a white background', '--num_samples', 4]
    pix = {}
    for name, extra in (('argmax0', ['--seed', 0]), ('argmax1', ['--seed', 1]), ('t0', ['--seed', 0, '--oneshot_temperature', 1]),
                        ('t0again', ['--seed', 0, '--oneshot_temperature', 1]), ('t1', ['--seed', 1, '--oneshot_temperature', 1])):
        naruto('generate', *base, '--out', tmp_path / f'{name}.png', *extra, check=True)
        pix[name] = Image.open(tmp_path / f'{name}.png').tobytes()
    assert pix['argmax0'] == pix['argmax1'] and pix['t0'] == pix['t0again']
    assert pix['t0'] != pix['t1'] and pix['t0'] != pix['argmax0']
    r = naruto('eval', *base[:4], '--oneshot_temperature', 0.5, '--num_prompts', 10, '--judge_steps', 0, check=True)
    assert json.loads(r.stdout)['oneshot_temperature'] == 0.5


def test_prior_correction_reaches_one_shot(runs, tmp_path):
    """`--prior_correction`: one-shot's argmax reads the logits less tau x log(code frequency in training), so a large tau changes the
    picture; iterative decoding does not read it (round 27 measured one-shot); `eval` records it; generator.json keeps the counts."""
    meta = json.loads((runs['cftn2'] / 'generator.json').read_text())
    grid, n_train = meta['vqvae']['grid'], 256                           # the tiny preset's training pictures
    assert len(meta['code_counts']) == meta['vqvae']['codebook_size'] and sum(meta['code_counts']) == n_train * grid ** 2
    pix = {}
    for name, extra in (('argmax', ['--mode', 'oneshot']), ('la', ['--mode', 'oneshot', '--prior_correction', 5]),
                        ('it', ['--mode', 'iterative', '--steps', 4]), ('it_la', ['--mode', 'iterative', '--steps', 4, '--prior_correction', 5])):
        naruto('generate', '--ckpt', runs['cftn2'], '--prompt', 'a large red circle in the center on a white background',
               '--num_samples', 2, '--out', tmp_path / f'{name}.png', *extra, check=True)
        pix[name] = Image.open(tmp_path / f'{name}.png').tobytes()
    assert pix['la'] != pix['argmax'] and pix['it_la'] == pix['it']
    r = naruto('eval', '--ckpt', runs['cftn2'], '--mode', 'oneshot', '--prior_correction', 0.75, '--num_prompts', 10, '--judge_steps', 0, check=True)
    assert json.loads(r.stdout)['prior_correction'] == 0.75


def test_generator_records_its_vqvae(runs, vq_run):
    meta = json.loads((runs['cftn2'] / 'generator.json').read_text())
    assert meta['vqvae']['fingerprint'] == _sha(vq_run / 'checkpoint' / 'model.safetensors')[:16]
    assert (runs['cftn2'] / 'tokenizer').is_dir() and (runs['cftn2'] / 'vqvae' / 'model.safetensors').exists()
    assert (runs['cftn2'] / 'stage2A' / 'model.safetensors').exists()


def test_eval_generator_json(runs, tmp_path):
    out = tmp_path / 'e.json'
    r = naruto('eval', '--ckpt', runs['cftn2'], '--mode', 'oneshot', '--num_prompts', 20, '--out', out, '--judge_steps', 0, check=True)
    res = json.loads(r.stdout)
    assert res == json.loads(out.read_text())
    for k in ('prompt_accuracy', 'per_attribute', 'heldout_prompt_accuracy', 'seen_prompt_accuracy',
              'caption_accuracy', 'seconds_per_image'):
        assert k in res, k
    assert 0 <= res['prompt_accuracy'] <= 1 and res['seconds_per_image'] > 0
    assert set(res['per_attribute']) >= {'kind', 'colour', 'size', 'position', 'background'}
    r = naruto('eval', '--ckpt', runs['gpt'], '--num_prompts', 10, '--judge_steps', 0, check=True)
    assert json.loads(r.stdout)['mode'] == 'ar' and 'r_precision' not in json.loads(r.stdout)   # --judge_steps 0: the probe only


def test_eval_prompts_file_reports_unparsable(runs, tmp_path):
    f = tmp_path / 'prompts.txt'
    f.write_text('a large red circle in the center on a white background\na purple banana in the sky\n')
    res = json.loads(naruto('eval', '--ckpt', runs['cftn'], '--prompts', f, '--steps', 2, '--judge_steps', 0, check=True).stdout)
    assert res['n_prompts'] == 1 and res['unparsable_prompts'][0]['prompt'] == 'a purple banana in the sky'
    f.write_text('nothing the grammar knows\n')
    assert 'grammar' in one_line_error(naruto('eval', '--ckpt', runs['cftn'], '--prompts', f))


def test_eval_shapes_adds_the_judge_beside_the_probe(runs, tmp_path):
    "On shapes the probe's figures stay first and the judge's (trained on the shapes training split, cached) sit beside them."
    env = dict(NARUTO_CACHE=str(tmp_path / 'cache'))
    res = json.loads(naruto('eval', '--ckpt', runs['cftn2'], '--mode', 'oneshot', '--num_prompts', 12, '--judge_steps', 20,
                            env=env, check=True).stdout)
    keys = list(res)
    assert keys.index('prompt_accuracy') < keys.index('r_precision') and res['n_prompts'] == 18 and res['judge_n'] == 12
    for k in ('r_precision', 'clip_score', 'kid', 'fid', 'degenerate_share', 'retrieval_top1', 'retrieval_top10'):
        assert isinstance(res[k], float) and f'ceiling_{k}' in res, k
    assert res['chance_r_precision'] == 1 / 32 and res['data'] == 'shapes'   # tiny: 32 val pictures, 1 in 32 and 0 <= res['prompt_accuracy'] <= 1
    assert len(list((tmp_path / 'cache' / 'judges').iterdir())) == 1
    f = tmp_path / 'p.txt'; f.write_text('a large red circle in the center on a white background\n' * 3)
    res = json.loads(naruto('eval', '--ckpt', runs['cftn'], '--prompts', f, '--judge_steps', 20, '--steps', 2, env=env, check=True).stdout)
    assert res['n_prompts'] == 3 and res['judge_n'] == 3 and res['prompts'] == 'given' and 'r_precision' in res
    assert len(list((tmp_path / 'cache' / 'judges').iterdir())) == 1                   # the same judge for every shapes run


ODD_PROMPTS = ['', '   \t ', 'x' * 10_000, '🐸🍥🔥', '木ノ葉隠れの里のナルト', 'ctrl\x01\x07\x1bchars',
               '<script>alert(1)</script> **bold** [link](http://x)', '$(rm -rf /); `ls` | cat ../../etc/passwd > out.png',
               '../../../../tmp/evil']


@pytest.mark.parametrize('prompt', ODD_PROMPTS, ids=range(len(ODD_PROMPTS)))
def test_odd_prompts_generate_or_one_line(runs, tmp_path, prompt):
    png = tmp_path / 'odd.png'
    r = naruto('generate', '--ckpt', runs['cftn2'], '--prompt', prompt, '--mode', 'oneshot', '--num_samples', 1, '--out', png)
    if r.returncode == 0: assert Image.open(png).size[0] > 0
    else: one_line_error(r)
    assert 'Traceback' not in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ['odd.png']   # the prompt never names a file


def test_caption(runs, tmp_path):
    img = tmp_path / 'x.png'
    from naruto_core.shapes import parse_caption, render
    render(parse_caption('a large red circle in the center on a white background'), 16).save(img)
    r = naruto('caption', '--ckpt', runs['cftn2'], '--image', img, check=True)
    assert len(r.stdout.strip().splitlines()) == 1          # one caption line (a tiny model's may be short)
    fake = tmp_path / 'fake.png'; fake.write_text('not an image')
    assert 'fake.png' in one_line_error(naruto('caption', '--ckpt', runs['cftn2'], '--image', fake))
    assert 'cftn2' in one_line_error(naruto('caption', '--ckpt', runs['gpt'], '--image', img))
    r = naruto('caption', '--ckpt', runs['cftn2'], '--image', img, '--beams', 1, '--rerank', 0, check=True)   # greedy
    assert len(r.stdout.strip().splitlines()) == 1
    assert 'beams' in one_line_error(naruto('caption', '--ckpt', runs['cftn2'], '--image', img, '--beams', 0))
    assert 'rerank' in one_line_error(naruto('caption', '--ckpt', runs['cftn2'], '--image', img, '--rerank', -1))


def _left_to_right_logp(m, row, codes):
    "log p(caption row | codes) recomputed position by position, each position with every later one masked."
    sp = m.space; total, text = 0.0, torch.full_like(row, sp.text_mask_id)[None]; text[0, 0] = sp.bos_id
    for i in range(1, len(row)):
        if row[i - 1] in (sp.eos_id, sp.pad_id): break                 # after [EOS]: [PAD] at no cost
        logits = m(text, codes[None])[1][0, i].float()
        logits[[sp.text_mask_id, sp.null_id, sp.bos_id, sp.pad_id] + ([sp.eos_id] if i == 1 else [])] = float('-inf')
        total += logits.log_softmax(-1)[row[i]].item(); text[0, i] = row[i]
    return total


def test_caption_beams_score_is_the_captions_likelihood_and_rerank_chooses_by_the_image(runs):
    from naruto_core.generators import load_generator
    from naruto_core.sampling import caption_beams, image_loglik, sample_caption
    b = load_generator(runs['cftn2'], which='captioner'); m, sp = b.model, b.space
    codes = torch.randint(0, sp.codebook_size, (3, sp.num_image_tokens), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        text, score = caption_beams(m, codes, beams=4)
        assert text.shape == (3, 4, sp.text_len) and (score[:, :-1] >= score[:, 1:]).all()          # best first
        for r in range(3):
            for w in range(4): assert abs(_left_to_right_logp(m, text[r, w], codes[r]) - score[r, w].item()) < 1e-3
        greedy = sample_caption(m, codes, beams=1)                    # one beam: each position's most likely word
        for r in range(3):
            t = torch.full_like(greedy[r], sp.text_mask_id)[None]; t[0, 0] = sp.bos_id
            for i in range(1, sp.text_len):
                if greedy[r, i - 1] in (sp.eos_id, sp.pad_id): assert greedy[r, i] == sp.pad_id; continue
                lg = m(t, codes[r][None])[1][0, i].float()
                lg[[sp.text_mask_id, sp.null_id, sp.bos_id, sp.pad_id] + ([sp.eos_id] if i == 1 else [])] = float('-inf')
                assert greedy[r, i] == lg.argmax(); t[0, i] = greedy[r, i]
        assert (sample_caption(m, codes, beams=4, rerank=0) == text[:, 0]).all()
        il = image_loglik(m, text.flatten(0, 1), codes.repeat_interleave(4, 0)).view(3, 4)
        pick = (score + 1e4 * il).argmax(1)
        assert (sample_caption(m, codes, beams=4, rerank=1e4) == text[torch.arange(3), pick]).all()


@pytest.mark.parametrize('args,needle', [
    (['--mode', 'ar'], 'ar'), (['--steps', '0'], 'steps'), (['--num_samples', '0'], 'num_samples'),
    (['--out', 'picture.jpg'], '.png'), (['--temperature', '-1'], 'temperature'),
    (['--choice_temperature', '-1'], '--choice_temperature must be >= 0'),
    (['--revise', '1'], '--revise must be in [0, 1)'), (['--temperature_schedule', 'cosine'], 'temperature_schedule'),
    (['--mode', 'oneshot', '--oneshot_temperature', '-0.5'], '--oneshot_temperature must be >= 0'),
    (['--mode', 'oneshot', '--prior_correction', '-1'], '--prior_correction must be >= 0')])
def test_generate_bad_flags(runs, args, needle):
    line = one_line_error(naruto('generate', '--ckpt', runs['cftn2'], '--prompt', 'a red circle', *args))
    assert needle in line


def test_wrong_model_on_existing_run(runs, vq_run):
    line = one_line_error(naruto('train', '--model', 'gpt', '--vqvae', vq_run, '--preset', 'tiny', '--out', runs['cftn2']))
    assert 'cftn2' in line


def test_train_without_codes_or_vqvae(tmp_path):
    assert 'no/such' in one_line_error(naruto('train', '--model', 'cftn2', '--vqvae', tmp_path / 'no/such', '--out', tmp_path / 'g'))


def test_resume_across_stage_switch_is_exact(vq_run, tmp_path):
    """Killed after the 2A->2B switch (step 10 at the tiny preset), the cftn2 run resumes to the same weights and curve
    (with the text tower at its own learning rate: the optimizer's groups and their rates come back too)."""
    ref, run = tmp_path / 'ref', tmp_path / 'killed'
    args = ('train', '--model', 'cftn2', '--vqvae', vq_run, '--preset', 'tiny', '--set', 'train_gen.ckpt_every=4', '--set', 'gen.text_lr=2')
    naruto(*args, '--out', ref, check=True)
    r = naruto(*args, '--out', run, env={'NARUTO_FAULT': 'step@14'})
    assert r.returncode == -9, r.stderr
    assert max(m['step'] for m in metrics(run)) < 20
    naruto(*args, '--out', run, check=True)
    a, b = load_file(ref / 'checkpoint' / 'model.safetensors'), load_file(run / 'checkpoint' / 'model.safetensors')
    for k in a: assert (a[k] == b[k]).all(), k
    assert [m.get('loss') for m in metrics(ref)] == [m.get('loss') for m in metrics(run)]
    assert {m['stage'] for m in metrics(run) if 'stage' in m} == {2.0, 2.5}


def test_ema_weights_resume_exactly_and_are_sampled(vq_run, tmp_path):
    "train_gen.ema: every checkpoint holds ema.safetensors; killed and resumed, the average is the uninterrupted run's; sampling loads it."
    from naruto_core.generators import load_generator
    ref, run = tmp_path / 'ref', tmp_path / 'killed'
    args = ('train', '--model', 'cftn', '--vqvae', vq_run, '--preset', 'tiny', '--set', 'train_gen.ckpt_every=4', '--set', 'train_gen.ema=0.9')
    naruto(*args, '--out', ref, check=True)
    r = naruto(*args, '--out', run, env={'NARUTO_FAULT': 'step@14'})
    assert r.returncode == -9, r.stderr
    naruto(*args, '--out', run, check=True)
    a, b = load_file(ref / 'checkpoint' / 'ema.safetensors'), load_file(run / 'checkpoint' / 'ema.safetensors')
    w = load_file(ref / 'checkpoint' / 'model.safetensors')
    assert set(a) == set(w) and any(not torch.equal(a[k], w[k]) for k in w)        # an average, not a copy of the weights
    for k in a: assert torch.equal(a[k], b[k]), k
    assert any('ema_val_loss' in m for m in metrics(run))
    bundle = load_generator(run, device='cpu')
    assert bundle.weights == 'ema' and load_generator(run, device='cpu', ema=False).weights == 'model'
    got = dict(bundle.model.state_dict())
    assert all(torch.equal(got[k], a[k]) for k in a)
    assert 'ema' in one_line_error(naruto('train', '--model', 'cftn', '--vqvae', vq_run, '--preset', 'tiny',
                                          '--set', 'train_gen.ema=1.5', '--out', tmp_path / 'bad'))


def test_eval_real_pictures_uses_the_judge(tmp_path):
    "A generator trained on real pictures is judged in-domain (R-precision, KID, ... with ceilings), never by the shapes probe."
    import numpy as np
    import pyarrow as pa, pyarrow.parquet as pq
    import io
    rng, rows = np.random.default_rng(0), []
    for i in range(96):
        buf = io.BytesIO(); Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(buf, format='PNG')
        rows.append((f'picture number {i % 7}', buf.getvalue()))
    pq.write_table(pa.table({'image': [{'bytes': b, 'path': None} for _, b in rows], 'text': [c for c, _ in rows]}),
                   tmp_path / 'real.parquet')
    vq, gen = tmp_path / 'vq', tmp_path / 'gen'
    naruto('train-vqvae', '--preset', 'tiny', '--data', tmp_path / 'real.parquet', '--out', vq, check=True)
    naruto('train', '--model', 'cftn', '--vqvae', vq, '--preset', 'tiny', '--out', gen, check=True)
    env = dict(NARUTO_CACHE=str(tmp_path / 'cache'))
    res = json.loads(naruto('eval', '--ckpt', gen, '--judge_steps', 20, '--num_prompts', 8, env=env, check=True).stdout)
    assert 'prompt_accuracy' not in res and res['data'].endswith('real.parquet')          # no shapes figure for real pictures
    for k in ('r_precision', 'clip_score', 'kid', 'fid', 'degenerate_share', 'retrieval_top1', 'retrieval_top10'):
        assert f'ceiling_{k}' in res and isinstance(res[k], float), k
    from naruto_core.data import split_indices
    assert 0 <= res['r_precision'] <= 1 and res['chance_r_precision'] == 1 / len(split_indices(96, 0.05)[1])   # 1 in |val| < 100
    # the caption length came from the data: 'picture number N' needs far fewer than the preset's 24 tokens
    import yaml
    saved = yaml.safe_load((gen / 'config.yaml').read_text())['text']['max_len']
    assert saved < 24 and json.loads((gen / 'generator.json').read_text())['space']['text_len'] == saved
    assert 'judge_steps 0' in one_line_error(naruto('eval', '--ckpt', gen, '--judge_steps', 0, env=env))
    assert len(list((tmp_path / 'cache' / 'judges').iterdir())) == 1                   # the judge is cached per data set
    f = tmp_path / 'p.txt'; f.write_text('picture number 1\n')
    assert 'shapes' in one_line_error(naruto('eval', '--ckpt', gen, '--prompts', f, env=env))
    with pytest.raises(Exception, match='shapes'):                                     # the probe refuses it in Python too
        from naruto_core.evaluation import evaluate_generator
        from naruto_core.generators import load_generator
        evaluate_generator(load_generator(gen))


def test_text_latents_read_any_caption_length(vq_run, tmp_path):
    """gen.text_latents: a CFTN v2 whose image reads 3 learned latents trains, stores the resampler in its checkpoint,
    generates for a caption far longer than 3 tokens and captions; a negative count is one error that names it."""
    run = tmp_path / 'lat'
    naruto('train', '--model', 'cftn2', '--vqvae', vq_run, '--preset', 'tiny', '--set', 'gen.text_latents=3', '--out', run, check=True)
    w = load_file(run / 'checkpoint' / 'model.safetensors')
    assert w['resampler.latents'].shape[1] == 3
    out = tmp_path / 'long.png'
    prompt = 'a large red circle in the top left and a small green square in the bottom right on a gray background'
    naruto('generate', '--ckpt', run, '--prompt', prompt, '--out', out, check=True)
    assert Image.open(out).size[0] > 0
    assert 'text_latents' in one_line_error(naruto('train', '--model', 'cftn2', '--vqvae', vq_run, '--preset', 'tiny',
                                                   '--set', 'gen.text_latents=-1', '--out', tmp_path / 'bad'))


def test_tied_towers_resume_exactly_generate_and_caption(vq_run, tmp_path):
    """gen.tie_towers: the one set of blocks both towers run is stored once (no text_blocks in the checkpoint); killed
    and resumed (EMA on), weights and average are the uninterrupted run's and still shared once loaded; it generates and
    captions; a text tower of another depth than the image tower's is one error that names both keys."""
    from naruto_core.generators import load_generator
    ref, run = tmp_path / 'ref', tmp_path / 'killed'
    args = ('train', '--model', 'cftn2', '--vqvae', vq_run, '--preset', 'tiny', '--set', 'gen.tie_towers=true',
            '--set', 'gen.text_layers=0', '--set', 'train_gen.ckpt_every=4', '--set', 'train_gen.ema=0.9')
    naruto(*args, '--out', ref, check=True)
    r = naruto(*args, '--out', run, env={'NARUTO_FAULT': 'step@14'})
    assert r.returncode == -9, r.stderr
    naruto(*args, '--out', run, check=True)
    for name in ('model', 'ema'):
        a, b = load_file(ref / 'checkpoint' / f'{name}.safetensors'), load_file(run / 'checkpoint' / f'{name}.safetensors')
        assert not any(k.startswith('text_blocks.') for k in a) and any(k.startswith('img_blocks.') for k in a)
        assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a), name
    bundle = load_generator(run, device='cpu')
    assert bundle.weights == 'ema' and bundle.model.text_blocks is bundle.model.img_blocks
    naruto('generate', '--ckpt', run, '--prompt', 'a red circle', '--out', tmp_path / 'g.png', check=True)
    assert Image.open(tmp_path / 'g.png').size[0] > 0
    assert naruto('caption', '--ckpt', run, '--image', tmp_path / 'g.png', check=True).stdout.strip()
    err = one_line_error(naruto('train', '--model', 'cftn2', '--vqvae', vq_run, '--preset', 'tiny', '--set', 'gen.tie_towers=true',
                                '--out', tmp_path / 'bad'))                             # tiny: text_layers 1, layers 2
    assert 'tie_towers' in err and 'text_layers' in err


def test_own_caption_head_is_stored_apart_and_captions(vq_run, tmp_path):
    """gen.tie_text_head=false: the caption head has weights of its own, in the checkpoint beside the caption embeddings
    and loaded apart from them; the run captions; a value that is not a boolean is one error that names the key."""
    from naruto_core.generators import load_generator
    run = tmp_path / 'own_head'
    naruto('train', '--model', 'cftn2', '--vqvae', vq_run, '--preset', 'tiny', '--set', 'gen.tie_text_head=false', '--out', run, check=True)
    sd = load_file(run / 'checkpoint' / 'model.safetensors')
    assert 'text_head.weight' in sd and 'text_emb.weight' in sd and not torch.equal(sd['text_head.weight'], sd['text_emb.weight'])
    m = load_generator(run, device='cpu').model
    assert m.text_head.weight is not m.text_emb.weight and torch.equal(m.text_head.weight.detach().cpu(), sd['text_head.weight'])
    img = tmp_path / 'red.png'
    Image.new('RGB', (32, 32), (220, 40, 40)).save(img)
    assert naruto('caption', '--ckpt', run, '--image', img, check=True).stdout.strip()
    assert 'tie_text_head' in one_line_error(naruto('train', '--model', 'cftn2', '--vqvae', vq_run, '--preset', 'tiny',
                                                    '--set', 'gen.tie_text_head=maybe', '--out', tmp_path / 'bad'))


def test_caption_weight_and_caption_grad_text_train_and_refuse_bad_values(vq_run, tmp_path):
    """gen.caption_weight scales stage 2A's caption loss in the logged loss; gen.caption_grad='text' trains; a negative
    weight or an unknown caption_grad is one error that names the key."""
    from naruto_core.runs import read_metrics
    run = tmp_path / 'cw'
    naruto('train', '--model', 'cftn2', '--vqvae', vq_run, '--preset', 'tiny', '--set', 'gen.caption_weight=0.25',
           '--set', 'gen.caption_grad=text', '--set', 'gen.caption_frac=0.5', '--out', run, check=True)
    rows = [m for m in read_metrics(run / 'metrics.jsonl') if 'loss_i2t' in m and 'loss' in m]
    assert rows, 'stage 2A logged no caption loss'
    for m in rows: assert abs(m['loss'] - (m['loss_t2i'] + 0.25 * m['loss_i2t'])) < 1e-3 * max(1.0, m['loss']), m
    for bad, key in (('gen.caption_weight=-1', 'caption_weight'), ('gen.caption_grad=image', 'caption_grad'),
                     ('gen.caption_rows=both', 'caption_rows'), ('gen.caption_image_mask=0.5', 'caption_image_mask')):
        assert key in one_line_error(naruto('train', '--model', 'cftn2', '--vqvae', vq_run, '--preset', 'tiny',
                                            '--set', bad, '--out', tmp_path / 'bad'))


def test_caption_ramp_grows_the_captioning_rows_towards_the_switch(vq_run, tmp_path):
    """gen.caption_schedule=ramp: no captioning rows at the first step, most near the switch; without a switch to grow
    towards, or with more than half the batch captioning at the switch, one error."""
    from naruto_core.runs import read_metrics
    run = tmp_path / 'ramp'
    naruto('train', '--model', 'cftn2', '--vqvae', vq_run, '--preset', 'tiny', '--set', 'gen.caption_schedule=ramp',
           '--set', 'gen.caption_frac=0.5', '--set', 'train_gen.log_every=1', '--out', run, check=True)
    rows = [m for m in read_metrics(run / 'metrics.jsonl') if 'loss_t2i' in m]     # every step, in order
    two_a = [m for m in rows if m['stage'] == 2.0]
    assert len(two_a) == 10 and 'loss_i2t' not in two_a[0], two_a[:1]             # the first step: every row generates
    assert sum('loss_i2t' in m for m in two_a[5:]) >= 4                           # near the switch most rows caption
    assert not any('loss_i2t' in m for m in rows if m['stage'] != 2.0)            # stage 2B
    for bad, key in (('gen.caption_schedule=late', 'caption_schedule'), ('gen.caption_frac=0.75', 'caption_frac')):
        assert key in one_line_error(naruto('train', '--model', 'cftn2', '--vqvae', vq_run, '--preset', 'tiny', '--set',
                                            'gen.caption_schedule=ramp', '--set', bad, '--out', tmp_path / 'bad'))
    err = one_line_error(naruto('train', '--model', 'cftn2', '--vqvae', vq_run, '--preset', 'tiny', '--set', 'gen.caption_schedule=ramp',
                                '--set', 'gen.stage=2B', '--out', tmp_path / 'bad2'))
    assert 'caption_schedule' in err and 'switch_step' in err


def test_restart_step_gives_stage_2b_its_own_schedule(vq_run, tmp_path):
    """train_gen.restart_step at the switch: stage 2A's schedule ends at its floor, stage 2B warms up to the peak again
    (one schedule would be halfway down by then); a negative value is one error that names the key."""
    from naruto_core.runs import read_metrics
    run = tmp_path / 'restart'
    naruto('train', '--model', 'cftn2', '--vqvae', vq_run, '--preset', 'tiny', '--set', 'train_gen.restart_step=10',
           '--set', 'train_gen.log_every=1', '--out', run, check=True)
    rows = [m for m in read_metrics(run / 'metrics.jsonl') if 'lr' in m]
    peak, a, b = 2e-3, [m['lr'] for m in rows if m['stage'] == 2.0], [m['lr'] for m in rows if m['stage'] != 2.0]
    assert len(a) == 10 and len(b) == 10, (len(a), len(b))
    assert a[-1] < 0.2 * peak and abs(max(b) - peak) < 1e-9 and b[-1] < 0.2 * peak, (a, b)
    assert 'restart_step' in one_line_error(naruto('train', '--model', 'cftn2', '--vqvae', vq_run, '--preset', 'tiny',
                                                   '--set', 'train_gen.restart_step=-1', '--out', tmp_path / 'bad'))


def test_caption_image_reads_null_trains_captions_and_refuses_bad_values(vq_run, tmp_path):
    """gen.caption_image_reads=null_caption: the run keeps the setting, so that captioning reads the null caption as its
    training rows did, and captions; an unknown value is one error that names the key."""
    from naruto_core.generators import load_generator
    run = tmp_path / 'null'
    naruto('train', '--model', 'cftn2', '--vqvae', vq_run, '--preset', 'tiny', '--set', 'gen.caption_image_reads=null_caption',
           '--set', 'gen.caption_rows=joint', '--set', 'gen.caption_frac=0.5', '--out', run, check=True)
    b = load_generator(run, device='cpu')
    assert b.model.cfg.caption_image_reads == 'null_caption' and b.model._caption_reads(2) is not None
    img = tmp_path / 'red.png'
    Image.new('RGB', (32, 32), (220, 40, 40)).save(img)
    assert len(naruto('caption', '--ckpt', run, '--image', img, check=True).stdout.strip().splitlines()) == 1
    assert 'caption_image_reads' in one_line_error(naruto('train', '--model', 'cftn2', '--vqvae', vq_run, '--preset', 'tiny',
                                                          '--set', 'gen.caption_image_reads=caption', '--out', tmp_path / 'bad'))


def test_joint_caption_rows_learn_the_picture(vq_run, tmp_path):
    """gen.caption_rows=joint: with every stage-2A row captioning (caption_frac=1) the picture loss is still trained
    (with the default 'replace' those rows have none)."""
    from naruto_core.runs import read_metrics
    run = tmp_path / 'joint'
    naruto('train', '--model', 'cftn2', '--vqvae', vq_run, '--preset', 'tiny', '--set', 'gen.caption_rows=joint',
           '--set', 'gen.caption_image_mask=0.5', '--set', 'gen.caption_frac=1', '--out', run, check=True)
    rows = [m for m in read_metrics(run / 'metrics.jsonl') if 'loss_i2t' in m and 'loss_t2i' in m]
    assert rows and all(m['loss_t2i'] > 0 for m in rows), rows[:2]


def test_bridge_kv_block_reads_through_the_blocks_projection(vq_run, tmp_path):
    """gen.bridge_kv=block: the joint bridges keep their gates but no key/value projection of their own (none in the
    checkpoint, where the default run has one per bridge); the run generates and captions; an unknown value is one error."""
    from naruto_core.generators import load_generator
    runs = {kv: tmp_path / kv for kv in ('own', 'block')}
    for kv, run in runs.items():
        naruto('train', '--model', 'cftn2', '--vqvae', vq_run, '--preset', 'tiny', '--set', f'gen.bridge_kv={kv}',
               '--max_steps', '6', '--out', run, check=True)
    own, block = (load_file(runs[kv] / 'checkpoint' / 'model.safetensors') for kv in ('own', 'block'))
    bridge_kv = lambda sd: {k for k in sd if 'bridges.' in k and ('.kv.' in k or '.norm_kv.' in k)}
    assert bridge_kv(own) and not bridge_kv(block)
    assert {k for k in block if k.endswith('.g')} == {k for k in own if k.endswith('.g')}   # the same gated bridges
    assert load_generator(runs['block'], device='cpu').model.cfg.bridge_kv == 'block'
    naruto('generate', '--ckpt', runs['block'], '--prompt', 'a red circle', '--out', tmp_path / 'g.png', check=True)
    assert naruto('caption', '--ckpt', runs['block'], '--image', tmp_path / 'g.png', check=True).stdout.strip()
    assert 'bridge_kv' in one_line_error(naruto('train', '--model', 'cftn2', '--vqvae', vq_run, '--preset', 'tiny',
                                                '--set', 'gen.bridge_kv=both', '--out', tmp_path / 'bad'))


def test_image_registers_train_generate_caption_and_refuse_negative(vq_run, tmp_path):
    """gen.image_registers=R: R learned tokens in the image tower, stored in the checkpoint as (R, dim); the run
    generates and captions (the image's outputs keep their shape); a negative count is one error naming the key."""
    run = tmp_path / 'reg'
    naruto('train', '--model', 'cftn2', '--vqvae', vq_run, '--preset', 'tiny', '--set', 'gen.image_registers=2',
           '--max_steps', '6', '--out', run, check=True)
    sd = load_file(run / 'checkpoint' / 'model.safetensors')
    assert tuple(sd['registers'].shape) == (2, 32)                  # tiny: dim 32
    naruto('generate', '--ckpt', run, '--prompt', 'a red circle', '--out', tmp_path / 'g.png', check=True)
    assert naruto('caption', '--ckpt', run, '--image', tmp_path / 'g.png', check=True).stdout.strip()
    assert 'image_registers' in one_line_error(naruto('train', '--model', 'cftn2', '--vqvae', vq_run, '--preset', 'tiny',
                                                      '--set', 'gen.image_registers=-1', '--out', tmp_path / 'bad'))


def test_stage_2B_only_run_refuses_to_caption_and_still_evaluates(vq_run, tmp_path):
    """A cftn2 run trained in stage 2B only never trained its text head: `naruto caption` is one error that says so
    (not a caption made of noise), the library's captioner loader refuses it too, and `naruto eval` reports no caption figure."""
    from naruto_core.config import NarutoError
    from naruto_core.generators import load_generator
    run = tmp_path / 'b2'
    naruto('train', '--model', 'cftn2', '--stage', '2B', '--vqvae', vq_run, '--preset', 'tiny', '--max_steps', '6',
           '--out', run, check=True)
    naruto('generate', '--ckpt', run, '--prompt', 'a red circle', '--out', tmp_path / 'g.png', check=True)
    assert 'stage 2B only' in one_line_error(naruto('caption', '--ckpt', run, '--image', tmp_path / 'g.png'))
    with pytest.raises(NarutoError, match='stage 2B only'): load_generator(run, device='cpu', which='captioner')
    assert not load_generator(run, device='cpu').captions
    r = naruto('eval', '--ckpt', run, '--mode', 'oneshot', '--num_prompts', '8', '--judge_steps', '0', check=True)
    assert json.loads(r.stdout).get('caption_accuracy') is None
    # a run that trained in 2A and was resumed in 2B keeps its stage-2A weights: it still captions
    run2 = tmp_path / 'a_then_b'
    naruto('train', '--model', 'cftn2', '--vqvae', vq_run, '--preset', 'tiny', '--out', run2, check=True)   # tiny: 2A to step 10
    naruto('train', '--model', 'cftn2', '--stage', '2B', '--vqvae', vq_run, '--preset', 'tiny', '--max_steps', '24',
           '--out', run2, check=True)
    assert load_generator(run2, device='cpu').captions
    assert naruto('caption', '--ckpt', run2, '--image', tmp_path / 'g.png', check=True).stdout.strip()


def test_weights_flag_picks_best_or_last(runs, tmp_path):
    "`--weights best` loads best/ (the lowest validation loss), the default the last weights; a run without best/ gets one line."
    import shutil
    from safetensors.torch import save_file
    run = tmp_path / 'cftn'; shutil.copytree(runs['cftn'], run)
    f = run / 'best' / 'model.safetensors'                             # best/ made unmistakable: every weight zero
    save_file({k: torch.zeros_like(v) for k, v in load_file(f).items()}, f)
    def gen(w):
        png = tmp_path / f'{w}.png'
        r = naruto('generate', '--ckpt', run, '--prompt', 'a red circle', '--mode', 'oneshot', '--num_samples', 2, '--weights', w, '--out', png)
        return r, png
    (rl, last), (rb, best) = gen('last'), gen('best')
    assert rl.returncode == 0 and rb.returncode == 0, rl.stderr + rb.stderr
    assert json.loads(rb.stdout)['weights'] == 'best' and json.loads(rl.stdout)['weights'] == 'last'
    assert last.read_bytes() != best.read_bytes()                       # the zeroed best/ draws another picture
    d = tmp_path / 'default.png'                                         # no flag: the last weights, the same picture
    naruto('generate', '--ckpt', run, '--prompt', 'a red circle', '--mode', 'oneshot', '--num_samples', 2, '--out', d, check=True)
    assert d.read_bytes() == last.read_bytes()
    r = naruto('eval', '--ckpt', run, '--weights', 'best', '--num_prompts', 4, '--steps', 2, '--judge_steps', 0, check=True)
    assert json.loads(r.stdout)['weights'] == 'best'
    shutil.rmtree(run / 'best')
    assert 'best' in one_line_error(gen('best')[0])                     # no best/: named, not a traceback
