"`naruto bench --preset tiny`: the JSON's structure (keys, types, positive figures, skipped peers marked), not speeds."
import json, math, os

import pytest

from conftest import metrics, naruto

GENERATORS = {'lstm': {'ar'}, 'gpt': {'ar'}, 'cftn': {'oneshot', 'iterative_12'}, 'cftn2': {'oneshot', 'iterative_12'}}
PEERS = {'x_transformers_maskgit': ('train_step_ms', 'sample_ms_iterative_12', 'mfu', 'params'),
         'x_transformers_ar_kv': ('sample_ms', 'params'), 'hf_gpt2_generate': ('sample_ms', 'params')}
RATIOS = ('cftn_vs_x_transformers_maskgit_train_step_ms', 'cftn_vs_x_transformers_maskgit_sample_ms_iterative_12',
          'gpt_vs_x_transformers_ar_kv_sample_ms', 'gpt_vs_hf_gpt2_generate_sample_ms')


def positive(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0


NOT_INSTALLED = {'skipped': "not installed: pip install -e '.[bench]'"}


def skipped(v):
    "A peer that is not installed; a peer that is installed but failed ('failed: ...') fails the test."
    return v == NOT_INSTALLED


def check_grid(gens, peers, ratios):
    assert set(gens) == set(GENERATORS)
    for name, modes in GENERATORS.items():
        g = gens[name]
        for k in ('params', 'train_step_ms', 'train_tokens_per_s', 'mfu', 'flops_per_step'): assert positive(g[k]), (name, k, g.get(k))
        assert isinstance(g['params'], int)
        assert set(g['sample_ms']) == modes, (name, g['sample_ms'])
        assert all(positive(v) for v in g['sample_ms'].values()), (name, g['sample_ms'])
    assert set(peers) == set(PEERS)
    for name, keys in PEERS.items():
        p = peers[name]
        assert skipped(p) or all(positive(p[k]) for k in keys), (name, p)
    for k in RATIOS: assert k in ratios, k
    pairs = dict(zip(RATIOS, ('x_transformers_maskgit', 'x_transformers_maskgit', 'x_transformers_ar_kv', 'hf_gpt2_generate')))
    for k, peer in pairs.items():     # a ratio is a number exactly when its peer was measured
        assert (ratios[k] is None) if skipped(peers[peer]) else positive(ratios[k]), (k, ratios[k], peers[peer])


def test_bench_tiny_json(tmp_path):
    out = tmp_path / 'bench.json'
    r = naruto('bench', '--preset', 'tiny', '--out', out, timeout=300, check=True)
    res = json.loads(out.read_text())
    assert json.loads(r.stdout) == res                      # stdout carries the same JSON
    assert 'cftn' in r.stderr and 'MFU' in r.stderr          # the short table goes to stderr
    assert res['preset'] == 'tiny' and isinstance(res['device'], str) and res['device']
    assert isinstance(res['torch_threads'], int) and res['torch_threads'] >= 1
    assert positive(res['matmul_gflops']) and isinstance(res['matmul_size'], int)
    imp = res['imports']                                            # how fast `naruto --help` and `naruto generate` start
    assert set(imp) == {'naruto_core.cli', 'naruto_core.sampling'} and 'import in a fresh interpreter' in r.stderr
    for m, e in imp.items(): assert positive(e['seconds']) and not set(e['loads']) & {'matplotlib', 'ipywidgets', 'wandb'}, (m, e)
    cfg = res['config']
    for k in ('gen', 'codebook_size', 'text_len', 'image_tokens', 'vqvae', 'bench'): assert k in cfg, k
    for k in ('dim', 'layers', 'heads'): assert positive(cfg['gen'][k])
    v = res['vqvae']
    assert set(v) == {'ours', 'vector_quantize_pytorch'}
    for name, e in v.items():
        if name != 'ours' and skipped(e): continue
        assert positive(e['psnr']) and positive(e['step_ms']) and 0 < e['codebook_usage'] <= 1, (name, e)
    check_grid(res['generators'], res['peers'], res['ratios'])
    assert 'vqvae_vs_vector_quantize_pytorch_step_ms' in res['ratios']
    assert isinstance(res['grids'], dict) and res['grids']          # the tiny preset has a second grid too
    for n, g in res['grids'].items():
        assert g['image_tokens'] == int(n) == g['grid'] ** 2
        check_grid(g['generators'], g['peers'], g['ratios'])
    pl = res['prompt_lengths']                                      # iterative decoding, 16- and 512-token captions
    for n in ('16', '512'): assert positive(pl[n]['cftn_ms']) and positive(pl[n]['cftn2_ms']) and positive(pl[n]['cftn2_vs_cftn'])
    assert positive(pl['growth']['cftn']) and positive(pl['growth']['cftn2'])
    fl = pl['gflops']                                               # the same decoding counted: the caption's work grows less in CFTN v2
    for n in ('16', '512'): assert positive(fl[n]['cftn_gflops']) and positive(fl[n]['cftn2_gflops'])
    assert 1 < fl['growth']['cftn2'] < fl['growth']['cftn'], fl['growth']
    sz = res['sizes']                                               # one training step at the sizes preset (tiny here)
    assert sz['preset'] == 'tiny' and 'estimate' in sz['gpu_estimate']['label'] and positive(sz['gpu_estimate']['peak_tflops'])
    assert set(sz['models']) == {'vqvae', 'cftn2'}
    for name, m in sz['models'].items():
        assert isinstance(m['params'], int) and positive(m['flops_per_image']) and positive(m['cpu_images_per_s'])
        assert set(m['steps']) == {'1', '8'}, (name, m['steps'].keys())
        for b, s in m['steps'].items():
            assert positive(s['flops']) and positive(s['peak_memory_mb']) and positive(s['cpu_step_ms']) and s['measured'] is True, (name, b, s)
        assert m['steps']['8']['flops'] > m['steps']['1']['flops'] and positive(m['gpu_estimate']['step_ms'])
    lo = res['loader']                                              # a file-backed set: decoded at every read, decoded once
    for k in ('decoded_each_read', 'decoded_once'): assert positive(lo[k]['images_per_s']) and positive(lo[k]['images_per_cpu_s']), (k, lo[k])
    assert positive(lo['speedup']) and lo['cache']['read_back'] is True and positive(lo['cache']['build_s']) and lo['n_images'] > 0
    assert set(lo['vqvae_step']['keeps_up_with_gpu_estimate']) == {'decoded_each_read', 'decoded_once'}
    assert 'decoded once' in r.stderr and 'sizes, one training step' in r.stderr      # in the table too


def test_bench_unknown_preset_is_one_line():
    r = naruto('bench', '--preset', 'gigantic')
    assert r.returncode == 2 and 'Traceback' not in r.stderr and 'gigantic' in r.stderr


def test_missing_peers_are_skipped(tmp_path):
    "With the peer libraries unimportable, their entries say so and their ratios are null; ours are still measured."
    stubs = tmp_path / 'stubs'
    for m in ('x_transformers', 'vector_quantize_pytorch'):
        (stubs / m).mkdir(parents=True)
        (stubs / m / '__init__.py').write_text(f"raise ImportError('{m} hidden by the test')\n")
    r = naruto('bench', '--preset', 'tiny', env={'PYTHONPATH': os.pathsep.join(filter(None, [str(stubs), os.environ.get('PYTHONPATH')]))}, timeout=300, check=True)
    res = json.loads(r.stdout)
    msg = NOT_INSTALLED
    assert res['vqvae']['vector_quantize_pytorch'] == msg
    assert res['peers']['x_transformers_maskgit'] == msg and res['peers']['x_transformers_ar_kv'] == msg
    assert res['ratios']['cftn_vs_x_transformers_maskgit_train_step_ms'] is None
    assert res['ratios']['vqvae_vs_vector_quantize_pytorch_step_ms'] is None
    check_grid(res['generators'], res['peers'], res['ratios'])
    assert positive(res['vqvae']['ours']['psnr'])


MASKED = {'oneshot', 'iterative_4', 'iterative_8', 'iterative_12', 'iterative_12_g1'}
MODES = {'lstm': {'ar'}, 'gpt': {'ar'}, 'cftn': MASKED, 'cftn2': MASKED}
try:                                                                     # the peer's row, where its library imports
    import x_transformers  # noqa: F401
    MODES['xt_maskgit'] = MASKED
except ImportError: pass


def test_bench_quality_tiny(tmp_path, vq_run):
    "`naruto bench --quality DIR`: every generator trained on one VQ-VAE, every decoding mode scored; structure only."
    out = tmp_path / 'q.json'
    r = naruto('bench', '--preset', 'tiny', '--quality', tmp_path / 'cmp', '--vqvae', vq_run, '--num_prompts', '6',
               '--out', out, timeout=600, check=True)
    res = json.loads(out.read_text())
    assert json.loads(r.stdout) == res == json.loads((tmp_path / 'cmp' / 'quality.json').read_text())
    assert 'held-out' in r.stderr and 'iterative_12' in r.stderr           # the table
    assert res['vqvae'] == str(vq_run) and not (tmp_path / 'cmp' / 'vqvae').exists()
    assert set(res['models']) == set(MODES)
    for name, e in res['models'].items():
        assert (tmp_path / 'cmp' / name / 'checkpoint').is_dir()
        for k in ('params', 'train_step_ms', 'train_tokens_per_s', 'forward_flops_per_image'): assert positive(e[k]), (name, k)
        assert set(e['modes']) == MODES[name], (name, e['modes'].keys())
        for m in e['modes'].values():
            assert 0 <= m['prompt_accuracy'] <= 1 and positive(m['seconds_per_image']) and positive(m['flops_per_image'])
    it = res['models']['cftn2']['modes']
    assert it['iterative_8']['flops_per_image'] == 8 * it['oneshot']['flops_per_image']
    assert it['iterative_12_g1']['guidance'] == 1.0 and it['iterative_12']['guidance'] == 0.0


def test_quality_peer_needs_its_library(tmp_path, monkeypatch):
    "A peer whose library is missing is left out of the default models, and asking for it is one error naming the library."
    from naruto_core import quality
    from naruto_core.config import NarutoError
    monkeypatch.setitem(quality.PEERS, 'xt_maskgit', ('no_such_module_for_this_test', 'x-transformers'))
    assert 'xt_maskgit' not in quality.default_models() and quality.default_models()[:4] == ('lstm', 'gpt', 'cftn', 'cftn2')
    with pytest.raises(NarutoError, match='xt_maskgit needs x-transformers'):
        quality.compare_generators(tmp_path / 'q', 'tiny', models=['cftn', 'xt_maskgit'])
    assert not (tmp_path / 'q').exists()                                     # refused before any training


def test_bench_quality_equal_seconds(tmp_path, vq_run):
    "`--seconds S`: each model's steps come from a calibration of its step time (kept when rerun); a budget <= 0 is one line."
    from conftest import one_line_error
    args = ('bench', '--preset', 'tiny', '--quality', tmp_path / 'cmp', '--vqvae', vq_run, '--num_prompts', '4', '--models', 'cftn,cftn2')
    res = json.loads(naruto(*args, '--seconds', '2', timeout=600, check=True).stdout)
    assert res['budget'] == '2 s of training each'
    for name, e in res['models'].items():
        assert positive(e['calibrated_step_ms']), name
        assert e['train_steps'] == int(2 / (e['calibrated_step_ms'] / 1e3 * 1.12)) or e['train_steps'] == 1, name
        assert [m['step'] for m in metrics(tmp_path / 'cmp' / name) if 'loss' in m][-1] == e['train_steps'], name
    again = json.loads(naruto(*args, '--seconds', '2', timeout=600, check=True).stdout)
    assert {n: e['train_steps'] for n, e in again['models'].items()} == {n: e['train_steps'] for n, e in res['models'].items()}
    assert all(e['calibrated_step_ms'] is None for e in again['models'].values())      # reused: not calibrated again
    assert '> 0 seconds' in one_line_error(naruto(*args[:-2], '--models', 'cftn', '--seconds', '0', '--quality', tmp_path / 'c0'))


def test_bench_quality_bad_input_is_one_line(tmp_path, vq_run):
    from conftest import one_line_error
    assert 'vae' in one_line_error(naruto('bench', '--quality', tmp_path / 'c', '--vqvae', vq_run, '--models', 'gpt,vae'))
    assert 'nowhere' in one_line_error(naruto('bench', '--quality', tmp_path / 'c', '--vqvae', tmp_path / 'nowhere'))


def test_bench_quality_on_real_pictures_uses_the_judge(tmp_path, vq_run):
    "`naruto bench --quality DIR --data FILE.parquet`: a VQ-VAE trained on that set, every mode scored by the in-domain judge."
    from conftest import one_line_error, real_parquet
    pq = real_parquet(tmp_path / 'real.parquet')
    r = naruto('bench', '--preset', 'tiny', '--quality', tmp_path / 'cmp', '--data', pq, '--models', 'gpt,cftn', '--num_prompts', 4,
               '--judge_steps', 10, env=dict(NARUTO_CACHE=str(tmp_path / 'cache')), timeout=600, check=True)
    res = json.loads(r.stdout)
    assert res['evaluator'] == 'judge' and res['data'] == str(pq) and (tmp_path / 'cmp' / 'vqvae' / 'checkpoint').is_dir()
    assert set(res['models']) == {'gpt', 'cftn'}
    for name, e in res['models'].items():
        assert set(e['modes']) == MODES[name], (name, e['modes'].keys())
        for m in e['modes'].values():
            assert 'prompt_accuracy' not in m and 0 <= m['r_precision'] <= 1 and isinstance(m['kid'], float)
            assert positive(m['seconds_per_image']) and positive(m['flops_per_image'])
    assert {'ceiling_r_precision', 'chance_r_precision', 'ceiling_kid', 'ceiling_retrieval_top1'} <= set(res['judge'])
    assert 'R-precision' in r.stderr and 'real pictures (ceiling)' in r.stderr           # the table
    line = one_line_error(naruto('bench', '--preset', 'tiny', '--quality', tmp_path / 'c2', '--vqvae', vq_run, '--data', pq))
    assert 'trained on' in line and 'shapes' in line
