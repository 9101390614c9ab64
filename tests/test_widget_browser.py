"""The prompt panel as its users meet it: JupyterLab on a loopback port with a token, a small widgets notebook opened
in headless Chromium (Debian's `chromium` + `chromium-driver`, driven by Selenium; nothing downloads a browser), the
cell run, a prompt typed, Generate pressed. Screenshots are kept in $NARUTO_TEST_ARTIFACTS (default test-artifacts/)."""
import json, os, secrets, shutil, socket, subprocess, sys, time, urllib.request
from pathlib import Path

import pytest
from PIL import Image

from conftest import naruto

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get('NARUTO_TEST_ARTIFACTS', ROOT / 'test-artifacts'))
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
DRIVER = shutil.which('chromedriver')

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver "
                                 "(apt-get install -y chromium chromium-driver); no browser is downloaded")]
webdriver = pytest.importorskip('selenium.webdriver', reason='needs selenium (in the dev extra)')
from selenium.webdriver.common.by import By                       # noqa: E402
from selenium.webdriver.common.keys import Keys                   # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait           # noqa: E402

PROMPT = 'a small blue square in the top left on a black background'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def _notebook(run) -> dict:
    src = ("from naruto_core.widgets import PromptPanel\n"
           f"panel = PromptPanel(runs=[{str(run)!r}], prompt='a large red circle in the center on a white background', zoom=4)\n"
           "panel.num_samples.value, panel.steps.value = 2, 4\n"
           "panel")
    return dict(nbformat=4, nbformat_minor=5, metadata=dict(kernelspec=dict(name='python3', display_name='Python 3', language='python')),
                cells=[dict(cell_type='code', id='panel', metadata={}, execution_count=None, outputs=[], source=src)])


@pytest.fixture(scope='module')
def run(vq_run, tmp_path_factory):
    out = tmp_path_factory.mktemp('browser') / 'cftn2'
    naruto('train', '--model', 'cftn2', '--vqvae', vq_run, '--preset', 'tiny', '--out', out, check=True)
    return out


@pytest.fixture(scope='module')
def lab(run, tmp_path_factory):
    "A JupyterLab server on 127.0.0.1 with a token, its root a folder holding the panel notebook; yields (url, folder)."
    work = tmp_path_factory.mktemp('lab')
    (work / 'panel.ipynb').write_text(json.dumps(_notebook(run)))
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, 'JUPYTER_CONFIG_DIR': str(work / '.jupyter'), 'JUPYTERLAB_SETTINGS_DIR': str(work / '.settings'),
           'JUPYTERLAB_WORKSPACES_DIR': str(work / '.workspaces'), 'JUPYTER_RUNTIME_DIR': str(work / '.runtime')}
    log = open(work / 'lab.log', 'w')
    proc = subprocess.Popen([sys.executable, '-m', 'jupyterlab', '--no-browser', '--ServerApp.ip=127.0.0.1',
                             f'--ServerApp.port={port}', '--ServerApp.port_retries=0', f'--IdentityProvider.token={token}',
                             f'--ServerApp.root_dir={work}', '--LabApp.news_url=', '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate',
                             *(['--allow-root'] if hasattr(os, 'geteuid') and os.geteuid() == 0 else [])],   # CI containers run as root
                            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=work)
    base = f'http://127.0.0.1:{port}'
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f'{base}/api/status?token={token}', timeout=2); break
            except OSError:
                if proc.poll() is not None: pytest.fail(f"JupyterLab exited:\n{(work / 'lab.log').read_text()[-2000:]}")
                time.sleep(0.5)
        else: pytest.fail(f"JupyterLab did not answer on {base}:\n{(work / 'lab.log').read_text()[-2000:]}")
        yield f'{base}/lab/tree/panel.ipynb?token={token}', work
    finally:
        proc.terminate()
        try: proc.wait(20)
        except subprocess.TimeoutExpired: proc.kill(); proc.wait()
        log.close()


@pytest.fixture(scope='module')
def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--window-size=1400,1100',
              '--no-first-run', '--disable-extensions'):
        opts.add_argument(a)
    d = webdriver.Chrome(service=webdriver.ChromeService(executable_path=DRIVER), options=opts)   # this driver: nothing fetched
    d.set_page_load_timeout(120)
    yield d
    d.quit()


def _shot(driver, name) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    p = ARTIFACTS / name; driver.save_screenshot(str(p)); return p


def _images(driver) -> list:
    "(naturalWidth, naturalHeight) of every image widget in the output area that shows a picture."
    return [tuple(x) for x in driver.execute_script(
        "return [...document.querySelectorAll('.jp-OutputArea-output img')].filter(i => i.complete && i.naturalWidth > 0)"
        ".map(i => [i.naturalWidth, i.naturalHeight])")]


def _status(driver) -> str:
    return driver.execute_script("return [...document.querySelectorAll('.jp-OutputArea-output .widget-html')]"
                                 ".map(e => e.innerText).join('\\n')")


def _type_prompt(driver, text: str):
    box = driver.find_element(By.CSS_SELECTOR, '.jp-OutputArea-output .widget-textarea textarea')
    box.click(); box.send_keys(Keys.CONTROL, 'a'); box.send_keys(Keys.DELETE)
    if text: box.send_keys(text)
    _leave(box)


def _leave(field):
    "Leave a text field as a user does before pressing a button: it sends its value then (`continuous_update=False`)."
    field.send_keys(Keys.TAB); time.sleep(1.0)     # the value's message reaches the kernel before the next click


def _press(driver, label: str):
    driver.find_element(By.XPATH, f"//div[contains(@class, 'jp-OutputArea-output')]//button[normalize-space()='{label}']").click()


def test_panel_generates_in_chromium(lab, browser, tmp_path):
    try: _drive(lab, browser, tmp_path)
    except Exception:
        _shot(browser, 'prompt_panel_failure.png')   # what the browser showed when it failed
        raise


def _drive(lab, browser, tmp_path):
    url, work = lab
    t0 = time.time()
    browser.get(url)
    wait = WebDriverWait(browser, 120, poll_frequency=0.5)
    cell = wait.until(lambda d: next((e for e in d.find_elements(By.CSS_SELECTOR, '.jp-Notebook .jp-CodeCell .cm-content')
                                      if e.is_displayed()), None))
    cell.click()
    cell.send_keys(Keys.SHIFT, Keys.ENTER)         # run the cell, as a user would (it waits for the kernel to start)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '.jp-OutputArea-output .widget-textarea textarea'))
    assert not _images(browser)                                                 # nothing drawn yet

    _type_prompt(browser, PROMPT)
    _press(browser, 'Generate')
    wait.until(lambda d: _images(d) and 'images' in _status(d))
    w, h = max(_images(browser))
    assert w > h > 0                                                            # a row of two 16 px samples, zoomed
    assert '2 images, iterative, 4 steps' in _status(browser)
    shot = _shot(browser, 'prompt_panel.png')
    assert Image.open(shot).size[0] > 0

    _type_prompt(browser, '')                                                   # a bad prompt: nothing to draw
    _press(browser, 'Generate')
    wait.until(lambda d: 'the prompt is empty' in _status(d))
    msg = [l for l in _status(browser).splitlines() if 'prompt is empty' in l]
    assert len(msg) == 1 and 'Traceback' not in _status(browser)
    assert not _images(browser)                                                 # no stale picture above the message
    _shot(browser, 'prompt_panel_bad_prompt.png')

    pic = tmp_path / 'in.png'                                                   # the edit path: upload, box, Generate
    from naruto_core.shapes import Scene, Shape, render
    render(Scene([Shape('square', 'blue', 'large', 'top left')], 'black'), 16).save(pic)
    # The upload button opens the file dialog of a detached <input type=file>; a headless browser has no dialog, so the
    # input is attached where WebDriver can give it the file, as a user picking it in the dialog would.
    browser.execute_script("""
        const click = HTMLInputElement.prototype.click;
        HTMLInputElement.prototype.click = function () {
          if (this.type !== 'file') return click.call(this);
          this.id = 'naruto-upload'; this.style.display = 'block'; document.body.appendChild(this);
        };""")
    browser.find_element(By.XPATH, "//div[contains(@class, 'jp-OutputArea-output')]//button[contains(., 'picture')]").click()
    wait.until(lambda d: d.find_element(By.ID, 'naruto-upload')).send_keys(str(pic))
    wait.until(lambda d: 'type a box' in _status(d))
    _type_prompt(browser, PROMPT)
    box = browser.find_element(By.XPATH, "//div[contains(@class, 'jp-OutputArea-output')]//input[@placeholder='x0,y0,x1,y1']")
    box.click(); box.send_keys('0,0,8,8'); _leave(box)
    _press(browser, 'Generate')
    wait.until(lambda d: '2 edits, iterative' in _status(d))
    assert _images(browser)
    _shot(browser, 'prompt_panel_edit.png')
    print(f"browser test: {time.time() - t0:.0f} s from opening the notebook")
