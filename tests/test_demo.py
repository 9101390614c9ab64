"`naruto demo` at the tiny preset: every file and report figure, and a rerun that resumes instead of retraining."
import json, subprocess, sys
from pathlib import Path

import yaml

from conftest import metrics, naruto


def test_demo_tiny_files_report_and_resume(tmp_path):
    out = tmp_path / 'demo'
    r = naruto('demo', '--preset', 'tiny', '--out', out, timeout=900, check=True)
    for f in ('samples.png', 'gates.png', 'report.json', 'report.md'): assert (out / f).stat().st_size > 0, f
    rep = json.loads((out / 'report.json').read_text())
    gen = rep['generation']
    assert {'oneshot', 'iterative_12', 'oneshot_bridges_off'} <= set(gen) and any(k.startswith('iterative_12_guided') for k in gen)
    for e in gen.values():
        for k in ('prompt_accuracy', 'seen_prompt_accuracy', 'heldout_prompt_accuracy', 'chance_prompt_accuracy'):
            assert 0 <= e[k] <= 1, (k, e[k])
        assert e['seconds_per_image'] > 0
    assert 0 <= rep['caption_accuracy'] <= 1 and rep['oneshot_speedup'] > 0
    assert set(rep['seconds']) == {'vqvae', 'codes', 'cftn2', 'eval', 'total'} and rep['peak_memory_mb'] > 0
    assert 0 < rep['vqvae']['codebook_usage'] <= 1
    assert (out / 'cftn2' / 'stage2A' / 'model.safetensors').exists()
    md = (out / 'report.md').read_text()
    assert 'held-out' in md and 'Chance' in md and 'samples.png' in md
    steps = [m['step'] for m in metrics(out / 'cftn2') if 'loss' in m]
    # the rerun finds both runs trained: nothing is retrained, the report is written again
    r2 = naruto('demo', '--preset', 'tiny', '--out', out, timeout=900, check=True)
    assert 'already trained' in r2.stderr
    assert [m['step'] for m in metrics(out / 'cftn2') if 'loss' in m] == steps
    # tools/demo_seeds.py gathers the run into a group of a demo_seeds.json, keyed by the run's own seed
    rep = json.loads((out / 'report.json').read_text())                          # as the rerun wrote it
    into = tmp_path / 'demo_seeds.json'
    tool = [sys.executable, str(Path(__file__).parents[1] / 'tools' / 'demo_seeds.py'), 'g', str(out), '--into', str(into)]
    run = lambda *extra: subprocess.run(tool + list(extra), capture_output=True, text=True)
    assert run().returncode != 0 and 'design' in run().stderr                    # a new group needs --design
    assert run('--add').returncode != 0                                           # nothing to add to yet
    assert run('--design', 'tiny').returncode == 0
    seed = str(yaml.safe_load((out / 'cftn2' / 'config.yaml').read_text())['train_gen']['seed'])
    g = json.loads(into.read_text())['g']
    assert list(g['seeds']) == [seed] and g['design'] == 'tiny' and g['wall_s'][seed] == round(rep['seconds']['total'], 1)
    assert g['seeds'][seed]['caption_accuracy'] == rep['caption_accuracy']
    assert g['seeds'][seed]['generation']['oneshot']['heldout_prompt_accuracy'] == rep['generation']['oneshot']['heldout_prompt_accuracy']
    assert run('--add').returncode == 0 and json.loads(into.read_text())['g'] == g  # the same seed again: replaced, not doubled
    assert run(str(out), '--design', 'tiny').returncode != 0                      # two runs of one seed: refused


def test_demo_on_a_parquet_is_judged_not_probed(tmp_path):
    "`naruto demo --data FILE.parquet`: the in-domain judge scores every decoding, beside its ceiling and chance; no probe figure."
    import yaml
    from conftest import real_parquet
    pq = real_parquet(tmp_path / 'real.parquet')
    out = tmp_path / 'demo'
    r = naruto('demo', '--preset', 'tiny', '--data', pq, '--out', out, '--judge_steps', 20, '--set', 'train_gen.max_steps=16',
               env=dict(NARUTO_CACHE=str(tmp_path / 'cache')), timeout=900, check=True)
    for f in ('samples.png', 'gates.png', 'report.json', 'report.md'): assert (out / f).stat().st_size > 0, f
    rep = json.loads((out / 'report.json').read_text())
    assert rep['evaluator'] == 'judge' and rep['data'] == str(pq)
    gen = rep['generation']
    assert {'oneshot', 'iterative_12', 'oneshot_bridges_off'} <= set(gen) and any(k.startswith('iterative_12_guided') for k in gen)
    for e in gen.values():
        assert not [k for k in e if 'prompt_accuracy' in k], e                       # no probe figure for real pictures
        for k in ('r_precision', 'clip_score', 'kid', 'fid', 'degenerate_share', 'retrieval_top1', 'retrieval_top10'):
            assert isinstance(e[k], float) and isinstance(e[f'ceiling_{k}'], float), k
        assert 0.01 <= e['chance_r_precision'] <= 1 and 0 < e['chance_retrieval_top1'] < 1 and e['seconds_per_image'] > 0
    assert rep['caption_accuracy'] is None and rep['caption_examples'] and rep['oneshot_speedup'] > 0
    md = (out / 'report.md').read_text()
    assert 'R-precision' in md and 'real pictures (ceiling)' in md and '| chance |' in md
    assert 'prompt accuracy' not in md and 'two shapes' not in md and 'samples.png' in md
    captions = [e['truth'] for e in rep['caption_examples']]
    assert all(c.startswith('a ') and 'square' in c for c in captions)                # real val captions, not DEMO_PROMPTS
    # the caption length came from the data (short captions: fewer tokens than the preset's 24), and nothing was cut
    saved = yaml.safe_load((out / 'cftn2' / 'config.yaml').read_text())['text']['max_len']
    assert saved < 24 and json.loads((out / 'cftn2' / 'generator.json').read_text())['space']['text_len'] == saved
    assert 'truncated' not in r.stderr and 'are cut' not in r.stderr, r.stderr
