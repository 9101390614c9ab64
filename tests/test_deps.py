"""Dependencies that fit a user's environment: what `naruto --help` and `naruto generate` import, a torch range rather
than a pin, the bench peers in measured ranges, py.typed in the wheel, and a run lock that works without fcntl."""
import json, os, shutil, subprocess, sys, zipfile
from configparser import ConfigParser
from pathlib import Path

import pytest

from conftest import OFFLINE, naruto

ROOT = Path(__file__).resolve().parent.parent
OPTIONAL = ('matplotlib', 'ipywidgets', 'wandb')
PROMPT = 'a large red circle in the center on a white background'


def _loaded(code: str) -> list:
    "The OPTIONAL libraries in sys.modules after running `code` in a fresh interpreter."
    probe = f"{code}\nimport sys, json; print(json.dumps([m for m in {list(OPTIONAL)!r} if m in sys.modules]))"
    r = subprocess.run([sys.executable, '-c', probe], capture_output=True, text=True, env={**os.environ, **OFFLINE}, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize('modules', ['naruto_core.cli', 'naruto_core.sampling',
                                     'naruto_core.generators, naruto_core.baselines, naruto_core.cftn, naruto_core.callosal',
                                     'naruto_core.hub'])
def test_inference_modules_import_no_optional_library(modules):
    "matplotlib, ipywidgets and wandb are imported where they are used, never with the modules that load and sample."
    assert _loaded(f"import {modules}") == []


def test_naruto_generate_imports_no_optional_library(vq_run, tmp_path):
    "The whole of `naruto generate` on a CFTN v2 run (load, sample, write the PNG) without matplotlib, ipywidgets, wandb."
    run = tmp_path / 'cftn2'
    naruto('train', '--model', 'cftn2', '--vqvae', vq_run, '--preset', 'tiny', '--out', run, check=True)
    code = (f"from naruto_core.cli import main\n"
            f"assert main(['generate', '--ckpt', {str(run)!r}, '--prompt', {PROMPT!r}, '--num_samples', '2', "
            f"'--out', {str(tmp_path / 'g.png')!r}]) == 0")
    assert _loaded(code) == []
    assert (tmp_path / 'g.png').exists()


def _settings() -> dict:
    cfg = ConfigParser(delimiters=['=']); cfg.read(ROOT / 'settings.ini', encoding='utf-8')
    return cfg['DEFAULT']


def test_requirements_are_ranges():
    "torch to a range (an exact pin makes pip replace a user's CUDA build); the bench peers in the ranges that were measured."
    req = _settings()['requirements'].split()
    torch = [r for r in req if r.startswith('torch')]
    assert torch and all('==' not in r for r in torch) and any('>=' in r for r in torch) and any('<' in r.replace('<=', '') for r in torch), torch
    assert any(r.startswith('filelock') for r in req)
    bench = _settings()['bench_requirements'].split()
    for peer in ('vector-quantize-pytorch', 'x-transformers', 'diffusers'):
        spec = [r for r in bench if r.startswith(peer)]
        assert spec and '>=' in spec[0] and '<' in spec[0], (peer, bench)


def test_wheel_ships_py_typed(tmp_path):
    "setup.py puts naruto_core/py.typed into the wheel, so type checkers read the package's annotations."
    assert (ROOT / 'naruto_core' / 'py.typed').exists()
    src = tmp_path / 'src'
    src.mkdir()
    for f in ('setup.py', 'settings.ini', 'README.md'): shutil.copy(ROOT / f, src / f)
    shutil.copytree(ROOT / 'naruto_core', src / 'naruto_core', ignore=shutil.ignore_patterns('__pycache__'))
    r = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q', '-w', str(tmp_path / 'dist'), str(src)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    wheel, = (tmp_path / 'dist').glob('naruto_core-*.whl')
    assert 'naruto_core/py.typed' in zipfile.ZipFile(wheel).namelist()


def test_run_lock_without_fcntl(tmp_path):
    "Where fcntl does not exist, RunDir's lock (filelock) still keeps a second process out and is free again once released."
    code = ("import sys, warnings; sys.modules['fcntl'] = None; warnings.simplefilter('ignore')\n"
            "from naruto_core.runs import RunDir\n"
            f"r = RunDir({str(tmp_path / 'run')!r}).make().lock()\n"
            f"try: RunDir({str(tmp_path / 'run')!r}).lock(); print('not locked')\n"
            "except Exception as e: print('refused:', e)\n"
            f"r.unlock(); RunDir({str(tmp_path / 'run')!r}).lock().unlock(); print('free again')")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'refused:' in r.stdout and 'in use by another process' in r.stdout and 'free again' in r.stdout, r.stdout
