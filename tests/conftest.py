"Shared fixtures: offline environment, and a helper that runs the `naruto` CLI in a subprocess."
import json, os, subprocess, sys
from pathlib import Path

import pytest

OFFLINE = dict(HF_HUB_OFFLINE='1', HF_DATASETS_OFFLINE='1', WANDB_MODE='disabled', TOKENIZERS_PARALLELISM='false')
os.environ.update(OFFLINE)


def naruto(*args, env=None, timeout=600, check=False):
    "Run `python -m naruto_core ARGS` in a subprocess; returns the CompletedProcess (text mode)."
    e = {**os.environ, **OFFLINE, **(env or {})}
    r = subprocess.run([sys.executable, '-m', 'naruto_core', *map(str, args)], capture_output=True, text=True,
                       env=e, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"naruto {' '.join(map(str, args))} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return r


def one_line_error(r):
    "Assert a user error: non-zero exit, one line on stderr naming the problem, no traceback."
    assert r.returncode != 0, r.stdout
    lines = [l for l in r.stderr.strip().splitlines() if not l.startswith('warning:')]
    assert 'Traceback' not in r.stderr, r.stderr
    assert len(lines) == 1, r.stderr
    return lines[0]


def metrics(run):
    p = Path(run) / 'metrics.jsonl'
    return [json.loads(l) for l in p.read_text().splitlines()] if p.exists() else []


@pytest.fixture(scope='session')
def vq_run(tmp_path_factory):
    "A tiny trained VQ-VAE run with cached codes, shared by the tests that need one."
    out = tmp_path_factory.mktemp('vq') / 'run'
    naruto('train-vqvae', '--preset', 'tiny', '--out', out, check=True)
    naruto('encode', '--vqvae', out, check=True)
    return out


def real_parquet(path, n: int = 96, size: int = 16, seed: int = 0) -> Path:
    "A tiny parquet in the Naruto set's schema (`image`, `text`): a coloured square on white, its caption naming both."
    import io
    import numpy as np, pyarrow as pa, pyarrow.parquet as pq
    from PIL import Image
    colours = {'red': (220, 40, 40), 'green': (40, 180, 70), 'blue': (40, 70, 220), 'yellow': (230, 210, 40)}
    rng, rows = np.random.default_rng(seed), []
    for i in range(n):
        name, rgb = list(colours.items())[i % 4]
        a = np.full((size, size, 3), 255, np.uint8); x, y = rng.integers(0, size // 2, 2); a[y:y + size // 2, x:x + size // 2] = rgb
        b = io.BytesIO(); Image.fromarray(a).save(b, format='PNG')
        rows.append((f"a {name} square {'at the top' if y < size // 4 else 'at the bottom'}, picture {i % 12}", b.getvalue()))
    pq.write_table(pa.table({'image': [{'bytes': b, 'path': None} for _, b in rows], 'text': [c for c, _ in rows]}), str(path))
    return Path(path)


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: long, or needs more than the package (a browser); deselect with -m "not slow"')
